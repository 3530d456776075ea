"""The emails orders sends its customers, one per fact, HTML and plain text. Private to orders.

Each is sent by a subscriber on the "email" queue (orders.handlers) inside one orders transaction that also holds
its claim: the confirmation's on the order (confirmation_sent_at), a parcel's on the parcel (email_sent_at), the
others an OrderEmail row (order, kind, key), unique. A second delivery of the event finds the claim and sends
nothing; a mail server that refuses raises, which rolls the claim back, and the outbox delivers the event again.
The templates (templates/orders/email/) share a layout (_base.html, _base.txt) and carry the order's link.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError
from django.template.loader import render_to_string

from kernel.db import atomic
from orders import services
from orders.models import OrderEmail

Kind = OrderEmail.Kind


def claim(*, order_id: int, kind: str, key: str) -> bool:
    """True once per (order, kind, key). In a savepoint: inside the caller's transaction, undone with it."""
    try:
        with atomic(module="orders"):
            OrderEmail.objects.create(order_id=order_id, kind=kind, key=key)
    except IntegrityError:
        return False
    return True


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(text, html) of templates/orders/email/<template>.txt and .html."""
    context = {"shop_name": settings.SHOP_NAME, "site_url": settings.SHOP_SITE_URL, **context}
    return (render_to_string(f"orders/email/{template}.txt", context),
            render_to_string(f"orders/email/{template}.html", context))  # fmt: skip


def send(
    *,
    number: str,
    template: str,
    subject: str,
    claimed: Callable[[services.OrderInfo], bool] | None = None,
    claim: Callable[[], bool] | None = None,
    context: Callable[[services.OrderInfo], dict[str, Any]] | None = None,
    history: bool = False,
) -> bool:
    """Claim and send one email about the order, in one transaction. Whether it was sent (False: claimed before,
    or nobody to write to). claim: a claim made before the order is read (one UPDATE; a repeated delivery then
    costs that statement alone); claimed: one that needs the order."""
    with atomic(module="orders"):
        if claim is not None and not claim():
            return False
        try:
            order = services.order_find(number=number, history=history)
        except services.OrderNotFound:
            return False
        if order.anonymised or (claimed is not None and not claimed(order)):
            return False
        extra = context(order) if context else {}
        text, html = render(template, {"order": order, "order_url": order.url, "subject": subject, **extra})
        send_mail(subject=f"{settings.SHOP_NAME}: {subject}", message=text, html_message=html,
                  from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[order.email])  # fmt: skip
    return True


def held_until(order: services.OrderInfo):
    """Until when an unpaid order's items are held (its reservation's expiry cancels it then)."""
    return order.created_at + timedelta(minutes=settings.SHOP_RESERVATION_MINUTES)
