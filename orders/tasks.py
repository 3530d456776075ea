from kernel.celery import periodic_task
from orders import services


@periodic_task(name="orders.expire_unpaid", module="orders")
def expire_unpaid() -> int:
    return services.orders_expire_unpaid()
