"""Startup checks of accounts' settings (`manage.py check`, and every command that runs the checks)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def default_country_is_offered(app_configs=None, **kwargs) -> list[Error]:
    from accounts.services import COUNTRIES

    code = str(getattr(settings, "SHOP_DEFAULT_COUNTRY", "")).upper()
    if code in dict(COUNTRIES):
        return []
    return [
        Error(
            f"SHOP_DEFAULT_COUNTRY is {code!r}, which is not one of the countries the shop delivers to.",
            hint="Use one of: " + ", ".join(c for c, _ in COUNTRIES) + " (accounts.services.COUNTRIES).",
            id="accounts.E001",
        )
    ]
