from catalog.stock import reservations_expire
from kernel.celery import periodic_task


@periodic_task(name="catalog.expire_reservations", module="catalog")
def expire_reservations() -> int:
    return reservations_expire()
