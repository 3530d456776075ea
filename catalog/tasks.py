from catalog.stock import reservations_expire
from kernel.celery import idempotent_task


@idempotent_task(name="catalog.expire_reservations", max_retries=0)
def expire_reservations() -> int:
    return reservations_expire()
