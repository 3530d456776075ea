"""Prepare a development shop: the demo staff account (printed) and the demo data of every module that has one."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.services import demo_superuser_ensure

DEMO_STAFF_EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create (or reset) the demo staff user and load demo data. Development shops only (DEBUG on)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_setup is for development shops: it resets a superuser's password. Set DEBUG=1.")
        user, password = demo_superuser_ensure(email=DEMO_STAFF_EMAIL)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo staff account (a new password is made on every run):"))
        self.stdout.write("  admin:    http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  email:    {user.email}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write("")
