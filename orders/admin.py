"""Orders in the admin: read-only data; every status change is an action that goes through orders.services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from catalog.services import category_tree, product_categories
from orders import services
from orders.models import Order, OrderLine, Promotion, Return, Shipment, StatusChange, Voucher, VoucherUse
from orders.vouchers import describe


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("sku", "name", "variant_label", "unit_price", "quantity", "line_total", "discount")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


REFUNDABLE = {services.OrderStatus.PARTIALLY_SHIPPED, services.OrderStatus.SHIPPED,
              services.OrderStatus.PARTIALLY_DELIVERED, services.OrderStatus.DELIVERED,
              services.OrderStatus.PARTIALLY_RETURNED, services.OrderStatus.RETURNED}  # fmt: skip
PACKABLE = {services.OrderStatus.PAID, services.OrderStatus.FULFILLING, services.OrderStatus.PARTIALLY_SHIPPED,
            services.OrderStatus.PARTIALLY_DELIVERED}  # fmt: skip


class ShipmentInline(admin.TabularInline):
    model = Shipment
    extra = 0
    can_delete = False
    fields = ("number", "status", "carrier", "tracking", "contents", "capture_amount", "shipped_at", "delivered_at")
    readonly_fields = fields

    @admin.display(description="tracking")
    def tracking(self, obj: Shipment) -> str:
        if obj.tracking_url:
            return format_html('<a href="{}" rel="noopener" target="_blank">{}</a>', obj.tracking_url,
                               obj.tracking_number or "track")  # fmt: skip
        return obj.tracking_number or "-"

    @admin.display(description="contents")
    def contents(self, obj: Shipment) -> str:
        return ", ".join(f"{sl.quantity} x {sl.line.sku}" for sl in obj.lines.select_related("line"))

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReturnInline(admin.TabularInline):
    model = Return
    extra = 0
    can_delete = False
    fields = ("number", "status", "reason", "note", "contents", "amount_refunded", "created_at", "received_at")
    readonly_fields = fields

    @admin.display(description="contents")
    def contents(self, obj: Return) -> str:
        def one(rl) -> str:
            fate = {True: ", restocked", False: ", not restocked", None: ""}[rl.restock]
            return f"{rl.quantity} x {rl.line.sku}{fate}{', refunded' if rl.refunded else ''}"

        return "; ".join(one(rl) for rl in obj.lines.select_related("line"))

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
    list_display = ("number", "email", "status", "total", "currency", "voucher", "created_at")
    list_filter = ("status", "shipping_method", "promotion_name")
    search_fields = ("number", "email", "lines__sku", "voucher_code")
    date_hierarchy = "created_at"
    inlines = (OrderLineInline, ShipmentInline, ReturnInline, StatusChangeInline)
    actions = ("start_fulfilment", "ship", "deliver", "cancel", "refund")
    change_form_template = "admin/orders/order/change_form.html"

    @admin.display(description="voucher", ordering="voucher_code")
    def voucher(self, obj: Order) -> str:
        if not obj.voucher_code:
            return "-"
        off = obj.voucher_discount or obj.shipping_discount
        return f"{obj.voucher_code} (-{off})"

    def get_urls(self):
        own = [
            path("<int:pk>/parcel/", self.admin_site.admin_view(self.parcel_view), name="orders_order_parcel"),
            path("<int:pk>/parcel/<int:number>/<str:step>/", self.admin_site.admin_view(self.parcel_step),
                 name="orders_order_parcel_step"),
            path("<int:pk>/return/<int:number>/", self.admin_site.admin_view(self.return_view),
                 name="orders_order_return"),
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="orders_order_refund"),
        ]  # fmt: skip
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if order is not None:
            extra["can_pack"] = order.status in PACKABLE
            steps = {Shipment.Status.PACKING: ("ship", "hand to the carrier"),
                     Shipment.Status.SHIPPED: ("deliver", "mark delivered")}  # fmt: skip
            extra["returns"] = list(order.returns.values_list("number", "status"))
            extra["can_refund"] = order.status in REFUNDABLE and order.amount_refunded < order.total
            extra["parcel_steps"] = [
                (number, *steps[status])
                for number, status in order.shipments.values_list("number", "status")
                if status in steps
            ]
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def parcel_view(self, request, pk: int):
        """Pack a parcel of some or all of the lines left, with its carrier and tracking number; ship it now or
        later. Through orders.services, like every change of an order."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        info = services.order_find(number=order.number, history=False)
        packed = {line.id: 0 for line in info.lines}
        for parcel in info.shipments:
            for line in parcel.lines:
                packed[line.line_id] += line.quantity
        left = [(line, line.quantity - packed[line.id]) for line in info.lines if line.quantity > packed[line.id]]
        form = ParcelForm(request.POST or None, left=left)
        if request.method == "POST" and form.is_valid():
            actor = f"staff:{request.user.pk}"
            try:
                parcel = services.shipment_create(
                    number=order.number, carrier=form.cleaned_data["carrier"], actor=actor,
                    lines=form.chosen_lines(), tracking_number=form.cleaned_data["tracking_number"],
                )  # fmt: skip
                if form.cleaned_data["ship_now"]:
                    services.shipment_ship(number=order.number, shipment=parcel.number, actor=actor)
            except services.OrderError as exc:
                form.add_error(None, str(exc))
            else:
                shipped = " and shipped; the payment for it is being captured" if form.cleaned_data["ship_now"] else ""
                messages.success(request, f"{order.number}: parcel {parcel.number} packed{shipped}.")
                return redirect(reverse("admin:orders_order_change", args=[pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "order": info,
                   "original": order, "form": form, "title": f"New parcel for {order.number}"}  # fmt: skip
        return TemplateResponse(request, "admin/orders/order/parcel.html", context)

    def return_view(self, request, pk: int, number: int):
        """A customer's return: receive it (per line, back to sale stock or not) and refund it, through the
        services."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        info = services.order_find(number=order.number, history=False)
        ret = next((r for r in info.returns if r.number == number), None)
        if ret is None:
            raise PermissionDenied
        receive = ReceiveForm(request.POST if "receive" in request.POST else None, ret=ret)
        refund = RefundForm(request.POST if "refund" in request.POST else None)
        actor = f"staff:{request.user.pk}"
        try:
            if receive.is_bound and receive.is_valid():
                services.return_receive(number=order.number, ret=number, restock=receive.restock(), actor=actor)
                messages.success(request, f"{order.number}: return {number} received.")
                return redirect(request.path)
            if refund.is_bound and refund.is_valid():
                services.return_refund(number=order.number, ret=number, actor=actor,
                                       amount=refund.cleaned_data["amount"],
                                       include_shipping=refund.cleaned_data["include_shipping"])  # fmt: skip
                messages.success(request, f"{order.number}: return {number} refunded; payments is refunding it.")
                return redirect(request.path)
        except services.OrderError as exc:
            messages.error(request, f"{order.number}: {exc}")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "order": info,
                   "original": order, "ret": ret, "receive": receive, "refund": refund,
                   "title": f"Return {number} of {order.number}"}  # fmt: skip
        return TemplateResponse(request, "admin/orders/order/return.html", context)

    def refund_view(self, request, pk: int):
        """Refund an amount without goods coming back (goodwill)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        form = GoodwillForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.order_refund_amount(
                    number=order.number, amount=form.cleaned_data["amount"], actor=f"staff:{request.user.pk}",
                    note=form.cleaned_data["note"],
                )  # fmt: skip
            except services.OrderError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{order.number}: {form.cleaned_data['amount']} being refunded.")
                return redirect(reverse("admin:orders_order_change", args=[pk]))
        info = services.order_find(number=order.number, history=False)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "order": info,
                   "original": order, "form": form, "title": f"Refund part of {order.number}"}  # fmt: skip
        return TemplateResponse(request, "admin/orders/order/refund.html", context)

    def parcel_step(self, request, pk: int, number: int, step: str):
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        actor = f"staff:{request.user.pk}"
        try:
            if step == "ship":
                services.shipment_ship(number=order.number, shipment=number, actor=actor)
                messages.success(request, f"{order.number}: parcel {number} shipped; its payment is being captured.")
            elif step == "deliver":
                services.shipment_deliver(number=order.number, shipment=number, actor=actor)
                messages.success(request, f"{order.number}: parcel {number} delivered.")
            else:
                raise PermissionDenied
        except services.OrderError as exc:
            messages.error(request, f"{order.number}: {exc}")
        return redirect(reverse("admin:orders_order_change", args=[pk]))

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


class ParcelForm(forms.Form):
    carrier = forms.ChoiceField()
    tracking_number = forms.CharField(max_length=64, required=False)
    ship_now = forms.BooleanField(required=False, initial=True, label="Hand it to the carrier now (charges for it)")

    def __init__(self, *args, left, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["carrier"].choices = [(code, name) for code, (name, _) in settings.ORDERS_CARRIERS.items()]
        self.left = left
        for line, quantity in left:
            label = f"{line.sku} {line.name}" + (f" ({line.variant_label})" if line.variant_label else "")
            self.fields[f"line_{line.id}"] = forms.IntegerField(
                min_value=0, max_value=quantity, initial=quantity, label=label, help_text=f"{quantity} left to ship"
            )

    def chosen_lines(self) -> list[tuple[int, int]]:
        return [(line.id, self.cleaned_data[f"line_{line.id}"]) for line, _ in self.left
                if self.cleaned_data.get(f"line_{line.id}")]  # fmt: skip

    def clean(self):
        data = super().clean()
        if not self.errors and not self.chosen_lines():
            raise forms.ValidationError("Choose at least one item for the parcel.")
        return data


class ReceiveForm(forms.Form):
    def __init__(self, *args, ret, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ret = ret
        for line in ret.lines:
            self.fields[f"restock_{line.line_id}"] = forms.BooleanField(
                required=False, initial=True, label=f"{line.quantity} x {line.sku} {line.name}: back to sale stock"
            )

    def restock(self) -> dict[int, bool]:
        return {line.line_id: self.cleaned_data[f"restock_{line.line_id}"] for line in self.ret.lines}


class RefundForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2, required=False,
                                help_text="Leave empty to refund the value of the returned items.")  # fmt: skip
    include_shipping = forms.BooleanField(required=False, label="Refund the delivery charge too")


class GoodwillForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    note = forms.CharField(max_length=200, initial="Goodwill refund")


# ---------------------------------------------------------------- vouchers and promotions


def _category_choices() -> list[tuple[int, str]]:
    return [(c.id, f"{'— ' * c.depth}{c.name}") for c in category_tree().categories]


class DiscountRuleForm(forms.ModelForm):
    """Categories picked from catalog's tree (each with its subcategories), products as catalog ids."""

    categories = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="A category includes its subcategories. Leave categories and products empty for every item.",
    )  # fmt: skip
    products = forms.CharField(
        required=False, help_text="Catalog product ids, separated by commas (the id in the catalog's product admin)."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["categories"].choices = _category_choices()
        if self.instance.pk:
            self.initial["categories"] = self.instance.category_ids
            self.initial["products"] = ", ".join(str(i) for i in self.instance.product_ids)

    def clean_products(self) -> list[int]:
        raw = [part.strip() for part in self.cleaned_data["products"].replace(";", ",").split(",") if part.strip()]
        if any(not part.isdigit() or len(part) > 18 for part in raw):
            raise forms.ValidationError("Enter product ids (numbers), separated by commas.")
        ids = sorted({int(part) for part in raw})
        missing = sorted(set(ids) - set(product_categories(product_ids=ids)))
        if missing:
            raise forms.ValidationError(f"No product with id {', '.join(map(str, missing))}.")
        return ids

    def clean(self):
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind == "percentage" and value is not None and not 0 < value <= 100:
            self.add_error("value", "A percentage is more than 0 and at most 100.")
        elif kind == "fixed" and value is not None and value <= 0:
            self.add_error("value", "Enter the amount to take off.")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data

    def save(self, commit: bool = True):
        self.instance.category_ids = self.cleaned_data.get("categories") or []
        self.instance.product_ids = self.cleaned_data.get("products") or []
        return super().save(commit)


class VoucherForm(DiscountRuleForm):
    class Meta:
        model = Voucher
        fields = ("code", "name", "is_active", "kind", "value", "minimum_spend", "starts_at", "ends_at", "usage_limit",
                  "per_customer_limit")  # fmt: skip

    def clean_code(self) -> str:
        code = services.voucher_normalise(code=self.cleaned_data["code"])
        if not code or any(ch.isspace() for ch in code):
            raise forms.ValidationError("A code is letters and digits, without spaces.")
        if Voucher.objects.filter(code=code).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"There is a voucher {code} already.")
        return code


class PromotionForm(DiscountRuleForm):
    class Meta:
        model = Promotion
        fields = ("name", "is_active", "kind", "value", "starts_at", "ends_at")


class RunningFilter(admin.SimpleListFilter):
    title = "validity"
    parameter_name = "validity"

    def lookups(self, request, model_admin):
        return (("running", "Running now"), ("scheduled", "Not started yet"), ("ended", "Ended"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "running":
            return queryset.filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now),
                                   Q(ends_at__isnull=True) | Q(ends_at__gt=now), is_active=True)  # fmt: skip
        if self.value() == "scheduled":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "ended":
            return queryset.filter(ends_at__lte=now)
        return queryset


class VoucherUseInline(admin.TabularInline):
    model = VoucherUse
    extra = 0
    can_delete = False
    fields = ("order_link", "email", "user_id", "amount", "created_at", "given_back_at")
    readonly_fields = fields

    @admin.display(description="order")
    def order_link(self, obj: VoucherUse) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.number)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _applies_to(obj) -> str:
    if not obj.category_ids and not obj.product_ids:
        return "everything"
    names = {c.id: c.name for c in category_tree().categories}
    parts = [names.get(i, f"category {i}") for i in obj.category_ids]
    if obj.product_ids:
        parts.append(f"{len(obj.product_ids)} product{'s' if len(obj.product_ids) > 1 else ''}")
    return ", ".join(parts)


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
    form = VoucherForm
    list_display = ("code", "name", "offer", "minimum_spend", "uses", "per_customer_limit", "starts_at", "ends_at",
                    "is_active")  # fmt: skip
    list_filter = ("kind", "is_active", RunningFilter)
    search_fields = ("code", "name")
    readonly_fields = ("times_used",)
    inlines = (VoucherUseInline,)
    fieldsets = (
        (None, {"fields": ("code", "name", "is_active")}),
        ("Discount", {"fields": ("kind", "value", "minimum_spend")}),
        ("Applies to", {"fields": ("categories", "products")}),
        ("Validity and limits", {"fields": ("starts_at", "ends_at", "usage_limit", "per_customer_limit",
                                            "times_used")}),
    )  # fmt: skip

    @admin.display(description="discount")
    def offer(self, obj: Voucher) -> str:
        return f"{describe(obj.kind, obj.value, settings.SHOP_CURRENCY)} on {_applies_to(obj)}"

    @admin.display(description="uses / limit", ordering="times_used")
    def uses(self, obj: Voucher) -> str:
        return f"{obj.times_used} / {obj.usage_limit if obj.usage_limit is not None else '∞'}"

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.uses.exists()  # used: switch it off instead (is_active)


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    form = PromotionForm
    list_display = ("name", "offer", "starts_at", "ends_at", "is_active")
    list_filter = ("kind", "is_active", RunningFilter)
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "is_active")}),
        ("Discount", {"fields": ("kind", "value")}),
        ("Applies to", {"fields": ("categories", "products")}),
        ("Runs", {"fields": ("starts_at", "ends_at")}),
    )

    @admin.display(description="discount")
    def offer(self, obj: Promotion) -> str:
        return f"{describe(obj.kind, obj.value, settings.SHOP_CURRENCY)} on {_applies_to(obj)}"
