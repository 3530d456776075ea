"""What accounts does when its own events happen."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.events import UserRegistered
from kernel.bus import subscribe


@subscribe(UserRegistered, queue="email")
def send_welcome_email(event: UserRegistered) -> None:
    """Welcome a new customer. Runs on a worker; the bus makes sure it runs once per registration."""
    context = {"shop_name": settings.SHOP_NAME, "email": event.email}
    send_mail(
        subject=f"Welcome to {settings.SHOP_NAME}",
        message=render_to_string("accounts/email/welcome.txt", context),
        html_message=render_to_string("accounts/email/welcome.html", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[event.email],
    )
