"""Customers, read only (customers:read). Staff accounts are not customers and are not listed."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from rest_framework import generics

from accounts.api.serializers import CustomerSerializer
from accounts.models import Address, User
from kernel.api import StrictFilterSet


class CustomerFilter(StrictFilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact", help_text="The exact address.")
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Changed at or after this time (ISO 8601)."
    )
    joined_after = django_filters.IsoDateTimeFilter(field_name="date_joined", lookup_expr="gte")
    joined_before = django_filters.IsoDateTimeFilter(field_name="date_joined", lookup_expr="lt")

    class Meta:
        model = User
        fields = ("email", "updated_since", "joined_after", "joined_before")


def customers():
    return User.objects.filter(is_staff=False).prefetch_related(
        Prefetch("addresses", queryset=Address.objects.order_by("-is_default_shipping", "-created_at", "-id"))
    )


class CustomerList(generics.ListAPIView):
    """Customers, newest change first by default; `updated_since` for incremental sync."""

    required_scopes = {"GET": "customers:read"}
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    ordering = "-updated_at"
    ordering_fields = ("updated_at", "date_joined", "id")

    def get_queryset(self):
        return customers()


class CustomerDetail(generics.RetrieveAPIView):
    required_scopes = {"GET": "customers:read"}
    serializer_class = CustomerSerializer

    def get_queryset(self):
        return customers()
