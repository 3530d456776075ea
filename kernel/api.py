"""What the modules' REST endpoints share beyond DRF (the rest is wired by settings: config/api.py)."""

from __future__ import annotations

import django_filters
from rest_framework import exceptions


class Conflict(exceptions.APIException):
    """409: the object is not in a state that allows this (a shipped order cannot be cancelled)."""

    status_code = 409
    default_code = "conflict"
    default_detail = "The object is not in a state that allows this."


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses a filter given with no value (`?updated_since=`): django-filter would ignore it, so
    a client's typo would silently list everything. Use it as the base of every API FilterSet."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        blank = [name for name in self.filters if name in self.data and not any(self.data.getlist(name))]
        for name in blank:
            self.form.add_error(name, "Give a value, or leave the parameter out.")
        return valid and not blank
