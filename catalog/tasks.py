from catalog.reconcile import reservations_reconcile
from catalog.stock import reservations_expire
from kernel.celery import periodic_task


@periodic_task(name="catalog.expire_reservations", module="catalog")
def expire_reservations() -> int:
    return reservations_expire()


@periodic_task(name="catalog.reconcile_reservations", module="catalog")
def reconcile_reservations() -> list[dict]:
    """Report (log at ERROR, and return) every stock row whose reserved count differs from its held reservations."""
    return [difference.as_dict() for difference in reservations_reconcile()]
