"""Orders in the admin: read-only data; every status change is an action that goes through orders.services."""

from __future__ import annotations

from django.contrib import admin, messages

from orders import services
from orders.models import Order, OrderLine, StatusChange


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("sku", "name", "variant_label", "unit_price", "quantity", "line_total")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "actor", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "email", "status", "total", "currency", "created_at")
    list_filter = ("status", "shipping_method")
    search_fields = ("number", "email", "lines__sku")
    date_hierarchy = "created_at"
    inlines = (OrderLineInline, StatusChangeInline)
    actions = ("start_fulfilment", "ship", "deliver", "cancel", "refund")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _each(self, request, queryset, action, done: str) -> None:
        actor = f"staff:{request.user.pk}"
        for number in queryset.values_list("number", flat=True):
            try:
                action(number, actor)
            except (services.OrderError, services.PaymentError) as exc:
                messages.error(request, f"{number}: {exc}")
            else:
                messages.success(request, f"{number}: {done}.")

    @admin.action(description="Start packing", permissions=["change"])
    def start_fulfilment(self, request, queryset) -> None:
        self._each(request, queryset, lambda n, a: services.order_start_fulfilment(number=n, actor=a), "being packed")

    @admin.action(description="Mark shipped (charges the customer)", permissions=["change"])
    def ship(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda n, a: services.order_ship(number=n, actor=a),
            "shipped; the payment is being captured",
        )

    @admin.action(description="Mark delivered", permissions=["change"])
    def deliver(self, request, queryset) -> None:
        self._each(request, queryset, lambda n, a: services.order_deliver(number=n, actor=a), "delivered")

    @admin.action(description="Cancel (returns stock, voids or refunds the payment)", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        self._each(request, queryset, lambda n, a: services.order_cancel(number=n, actor=a), "cancelled")

    @admin.action(description="Refund in full (shipped or delivered orders)", permissions=["change"])
    def refund(self, request, queryset) -> None:
        self._each(request, queryset, lambda n, a: services.order_refund(number=n, actor=a), "refunded")
