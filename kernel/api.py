"""What the modules' REST endpoints share beyond DRF (the rest is wired by settings: config/api.py): the 409
answer, the FilterSet base that refuses empty filters, filters for ids, booleans and `updated_since`, and the
ordering filter every list uses (settings DEFAULT_FILTER_BACKENDS), which keeps ties in a fixed order."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

import django_filters
from django import forms
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.utils.http import quote_etag
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter

logger = logging.getLogger(__name__)


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


class CodeConverter:
    """`<code:sku>` in an API path: an order number or a SKU, 1 to 64 characters, no slash and no NUL (which no
    such code holds, and which PostgreSQL refuses to compare: a 500 otherwise)."""

    regex = "[^/\x00]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IdConverter:
    """`<id:pk>` in an API path: a whole number that fits a bigint (1 to 18 digits). A longer one does not match
    the path, so it is a 404, not an overflow in the database (a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class _LocalAnswers:
    """The last few cached answers in this process. Safe to keep without invalidation: a key names the data it
    was made from (the freshness values are part of it), so a change makes a new key, never a stale hit."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[bytes, str, float]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[2] < time.monotonic():  # as old as the Redis copy would be: a deleted row shows by then
                self._items.pop(key)
                self._bytes -= len(item[0])
                return None
            self._items.move_to_end(key)
            return item[0], item[1]

    def put(self, key: str, item: tuple[bytes, str], seconds: int) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (item[0], item[1], time.monotonic() + seconds)
            self._bytes += len(item[0])
            while self._bytes > self._max_bytes and len(self._items) > 1:
                _, (body, _, _) = self._items.popitem(last=False)
                self._bytes -= len(body)


LOCAL_ANSWERS = _LocalAnswers()


def _cache_call(method, *args):
    """A cache call that a Redis outage turns into a miss (the list is computed), not a 500."""
    try:
        return method(*args)
    except Exception:  # redis.ConnectionError and kin: the cache is an optimisation
        logger.warning("API list cache unreachable; answering without it", exc_info=True)
        return None


class FreshListCache:
    """A list endpoint whose rendered answer is cached until the data under it changes.

    The view says what "changed" means in `list_freshness()`: a few cheap values, such as the latest updated_at
    of each table the list shows (index-only lookups). The answer is cached under the full URL and those values,
    in Redis for API_LIST_CACHE_SECONDS (0: off) and in the process's memory (the last 16 MB), so any change to
    a row the list shows makes the next request compute it afresh; a change no updated_at records (a deleted row)
    shows within that time. Only JSON answers are cached; the permission and throttle checks run on every request,
    before this."""

    def list_freshness(self) -> tuple:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        seconds = settings.API_LIST_CACHE_SECONDS
        if not seconds or request.accepted_renderer.format != "json":
            return super().get(request, *args, **kwargs)
        token = repr((request.build_absolute_uri(), request.accepted_media_type, self.list_freshness()))
        key = "api:list:" + hashlib.sha256(token.encode()).hexdigest()
        cached = LOCAL_ANSWERS.get(key) or _cache_call(cache.get, key)
        if cached is None:
            response = super().get(request, *args, **kwargs)
            if response.status_code != 200:
                return response
            body = request.accepted_renderer.render(response.data, request.accepted_media_type,
                                                    self.get_renderer_context())  # fmt: skip
            cached = (body, quote_etag(hashlib.md5(body, usedforsecurity=False).hexdigest()))
            _cache_call(cache.set, key, cached, seconds)
        LOCAL_ANSWERS.put(key, cached, seconds)
        body, etag = cached
        response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag  # ApiConditionalGetMiddleware answers If-None-Match with it, without hashing again
        return response
