"""What the modules' REST endpoints share beyond DRF (the rest is wired by settings: config/api.py): the 409
answer, the FilterSet base that refuses empty filters, filters for ids, booleans and `updated_since`, and the
ordering filter every list uses (settings DEFAULT_FILTER_BACKENDS), which keeps ties in a fixed order."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter


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


class StableOrderingFilter(OrderingFilter):
    """?ordering= as DRF's, with the primary key added last: rows that tie on the chosen field (many products
    refreshed at the same instant, the same title) keep one order, so the cursor neither repeats nor skips them."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        if len(valid) != len(fields):  # a typo would silently give another order, and a cursor that follows it
            allowed = ", ".join(name for name, _ in self.get_valid_fields(queryset, view, {"request": request}))
            raise exceptions.ValidationError({self.ordering_param: [f"Order by one of: {allowed} (- for descending)."]})
        return valid

    def get_ordering(self, request, queryset, view):
        given = request.query_params.get(self.ordering_param)
        if given is not None and not given.strip():
            raise exceptions.ValidationError({self.ordering_param: ["Give a value, or leave the parameter out."]})
        ordering = list(super().get_ordering(request, queryset, view) or ())
        if ordering and ordering[-1].lstrip("-") not in ("pk", "id"):
            ordering.append("-pk" if ordering[0].startswith("-") else "pk")
        return ordering

    def get_schema_operation_parameters(self, view):
        fields = [name for name, _ in self.get_valid_fields(view.get_queryset(), view, {"request": None})]
        default = view.ordering if isinstance(view.ordering, str) else ",".join(view.ordering)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"The order of the results (a `-` before the field: descending); {default} if left out.",
                "schema": {"type": "string", "enum": [f"{sign}{name}" for name in fields for sign in ("", "-")]},
            }
        ]


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An object's id (a whole number)."""

    field_class = forms.IntegerField


@extend_schema_field(OpenApiTypes.BOOL)
class BoolFilter(django_filters.TypedChoiceFilter):
    """true or false (1 or 0); anything else is a 400, where django-filter's BooleanFilter would ignore it."""

    def __init__(self, *args, **kwargs):
        choices = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]
        super().__init__(*args, choices=choices, coerce=lambda value: value in ("true", "1"), **kwargs)


def updated_since(field: str = "updated_at") -> django_filters.IsoDateTimeFilter:
    return django_filters.IsoDateTimeFilter(
        field_name=field, lookup_expr="gte", help_text="Changed at or after this time (ISO 8601)."
    )


class IdConverter:
    """`<id:pk>` in an API path: a whole number that fits a bigint (1 to 18 digits). A longer one does not match
    the path, so it is a 404, not an overflow in the database (a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
