"""python manage.py stock_reconcile"""

import sys

from django.core.management.base import BaseCommand

from catalog.reconcile import reservations_reconcile


class Command(BaseCommand):
    help = (
        "Compare each variant's reserved stock with the lines of its held reservations and print every difference "
        "(what the periodic task catalog.reconcile_reservations logs). Changes nothing; exits with 1 if any."
    )

    def handle(self, *args, **options) -> None:
        differences = reservations_reconcile()
        for d in differences:
            self.stdout.write(f"variant {d.variant_id} (SKU {d.sku}): {d.reserved} reserved, {d.held} held")
        if not differences:
            self.stdout.write("Reserved stock matches the held reservations.")
            return
        self.stdout.write(f"{len(differences)} difference(s).")
        sys.exit(1)
