from kernel.celery import idempotent_task
from orders import services


@idempotent_task(name="orders.expire_unpaid", max_retries=0)
def expire_unpaid() -> int:
    return services.orders_expire_unpaid()
