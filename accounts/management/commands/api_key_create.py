"""Make an API key from the command line (staff usually make them in the admin): prints the key, once.

python manage.py api_key_create --name ERP --scope orders:read --scope orders:write [--days 90]
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import API_SCOPES, UnknownScope, api_key_create


class Command(BaseCommand):
    help = "Make an API key with the given scopes and print it (it is not kept and cannot be shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True, help="who uses it, e.g. ERP")
        parser.add_argument("--scope", action="append", default=[], help=f"repeatable; one of {', '.join(API_SCOPES)}")
        parser.add_argument("--all-scopes", action="store_true", help="every scope")
        parser.add_argument("--days", type=int, default=None, help="expires after this many days (default: never)")

    def handle(self, *args, name: str, scope: list[str], all_scopes: bool, days: int | None, **options) -> None:
        scopes = list(API_SCOPES) if all_scopes else scope
        if not scopes:
            raise CommandError(f"Give at least one --scope ({', '.join(API_SCOPES)}) or --all-scopes.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            _, token = api_key_create(name=name, scopes=scopes, expires_at=expires_at)
        except UnknownScope as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
