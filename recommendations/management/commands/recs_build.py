"""manage.py recs_build: rebuild the related products and best sellers from the purchase ledger, now."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations import services


class Command(BaseCommand):
    help = (
        "Rebuild the recommendations (related products, best sellers) from the purchase ledger, in one swap; "
        "prints products, pairs, seconds and peak memory. RECS_METHOD and RECS_K choose the model."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron)")

    def handle(self, *args, **options) -> None:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if options["no_progress"]:
                return
            if bar is None:
                bar = tqdm(total=total, unit="block", desc=f"related products ({settings.RECS_METHOD})")
            bar.update(done - bar.n)

        try:
            report = services.recs_build(progress=progress)
        except services.BuildBusy as exc:
            raise CommandError(f"{exc}: try again when it has finished") from exc
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(self.style.SUCCESS(f"recommendations built: {report}"))
