"""What the modules' REST endpoints share beyond DRF (the rest is wired by settings: config/api.py)."""

from __future__ import annotations

from rest_framework import exceptions


class Conflict(exceptions.APIException):
    """409: the object is not in a state that allows this (a shipped order cannot be cancelled)."""

    status_code = 409
    default_code = "conflict"
    default_detail = "The object is not in a state that allows this."
