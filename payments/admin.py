"""Payments in the admin: read-only; refund and void go through payments.services."""

from __future__ import annotations

import uuid

from django.contrib import admin, messages

from payments import services
from payments.models import GatewayNotification, Payment, Transaction


class TransactionInline(admin.TabularInline):
    model = Transaction
    extra = 0
    can_delete = False
    fields = ("kind", "amount", "currency", "result", "error_code", "created_at", "completed_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("reference", "amount", "currency", "status", "amount_captured", "amount_refunded", "gateway",
                    "created_at")  # fmt: skip
    list_filter = ("status", "gateway")
    search_fields = ("reference", "gateway_reference", "gateway_alias")
    date_hierarchy = "created_at"
    inlines = (TransactionInline,)
    actions = ("void_authorisation", "refund_captured")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _each(self, request, queryset, operation, done: str) -> None:
        for payment in queryset:
            try:
                operation(payment_id=payment.pk, idempotency_key=f"admin:{uuid.uuid4()}")
            except services.PaymentError as exc:
                messages.error(request, f"{payment.reference}: {exc}")
            else:
                messages.success(request, f"{payment.reference}: {done}.")

    @admin.action(description="Void the authorisation (nothing captured yet)", permissions=["change"])
    def void_authorisation(self, request, queryset) -> None:
        self._each(request, queryset, services.payment_void, "authorisation voided")

    @admin.action(description="Refund everything captured and not yet refunded", permissions=["change"])
    def refund_captured(self, request, queryset) -> None:
        self._each(request, queryset, services.payment_refund, "refunded")


@admin.register(GatewayNotification)
class GatewayNotificationAdmin(admin.ModelAdmin):
    list_display = ("gateway", "event_type", "event_id", "received_at")
    list_filter = ("gateway", "event_type")
    search_fields = ("event_id",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in GatewayNotification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
