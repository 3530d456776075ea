from django.core.management.base import BaseCommand

from kernel import bus


class Command(BaseCommand):
    help = "Deliver again every domain event left undelivered in the outbox (what the periodic task does)."

    def handle(self, *args, **options) -> None:
        tried = bus.sweep()
        self.stdout.write(f"{tried} undelivered event(s) handed to their subscribers again.")
