"""What an order looks like to an integrator (output, read only, from orders' own models), and what each action
takes (input: only the fields it names; any other field is refused, so nothing can be set by sending it)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order, OrderLine, Return, ReturnLine, Shipment, ShipmentLine, StatusChange
from orders.services import AUTO_CARRIER, REASONS
from payments.services import PaymentInfo, PaymentStatus

MAX_QUANTITY = 2**31 - 1
MAX_ID = 2**63 - 1

# ---------------------------------------------------------------- enums, one named component each


class EnumField(serializers.ChoiceField):
    """A choice field documented as one named enum component (OrderStatus, ShipmentStatus, ...), the same
    component wherever the field appears; an empty value reads as null."""

    def __init__(self, choices, *, enum_name: str, **kwargs) -> None:
        self.enum_name = enum_name
        super().__init__(choices, **kwargs)

    def to_representation(self, value):
        return None if value in ("", None) else super().to_representation(value)


class EnumFieldSchema(OpenApiSerializerFieldExtension):
    target_class = EnumField

    def get_name(self) -> str:
        return self.target.enum_name

    def map_serializer_field(self, auto_schema, direction):
        choices = [(value, label) for value, label in self.target.choices.items() if value not in ("", None)]
        return {
            "type": "string",
            "enum": [value for value, _ in choices],
            "description": "\n".join(f"* `{value}` - {label}" for value, label in choices),
        }


def order_status(**kwargs) -> EnumField:
    return EnumField(Order.Status.choices, enum_name="OrderStatus", **kwargs)


CARRIERS = [(code, name) for code, (name, _) in settings.ORDERS_CARRIERS.items()]

# ---------------------------------------------------------------- output


class ShippingAddressSerializer(serializers.Serializer):
    """As given at checkout; an anonymised order keeps only its country and city."""

    full_name = serializers.CharField(read_only=True, default="")
    line1 = serializers.CharField(read_only=True, default="")
    line2 = serializers.CharField(read_only=True, default="")
    postal_code = serializers.CharField(read_only=True, default="")
    city = serializers.CharField(read_only=True, default="")
    region = serializers.CharField(read_only=True, default="")
    country = serializers.CharField(read_only=True, default="", help_text="ISO 3166-1 alpha-2.")
    phone = serializers.CharField(read_only=True, default="")


class BillingAddressSerializer(ShippingAddressSerializer):
    """Where the invoice goes: the shipping address unless the customer gave another; an anonymised order keeps only
    its country and city."""


class OrderLineSerializer(serializers.ModelSerializer):
    total = serializers.DecimalField(source="line_total", max_digits=12, decimal_places=2, read_only=True)
    discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True,
        help_text="The line's share of the order's discount (promotion and voucher): it cost total - discount.",
    )  # fmt: skip

    class Meta:
        model = OrderLine
        fields = ("id", "sku", "product_id", "variant_id", "name", "variant_label", "quantity", "unit_price",
                  "total", "discount", "currency", "quantity_shipped", "quantity_delivered", "quantity_returned",
                  "quantity_refunded")  # fmt: skip
        read_only_fields = fields


class ShipmentLineSerializer(serializers.ModelSerializer):
    line_id = serializers.IntegerField(read_only=True, help_text="The order line's id.")
    sku = serializers.CharField(source="line.sku", read_only=True)

    class Meta:
        model = ShipmentLine
        fields = ("line_id", "sku", "quantity")
        read_only_fields = fields


class ShipmentSerializer(serializers.ModelSerializer):
    status = EnumField(Shipment.Status.choices, enum_name="ShipmentStatus", read_only=True)
    carrier_name = serializers.SerializerMethodField()
    capture_amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True,
        help_text="What shipping the parcel charged; null before it ships and for the last parcel, which charged the "
                  "rest of the order, delivery included.",
    )  # fmt: skip
    lines = ShipmentLineSerializer(many=True, read_only=True)
    tracking_url = serializers.SerializerMethodField(help_text="The carrier's tracking page; null when it has none.")

    class Meta:
        model = Shipment
        fields = ("number", "status", "carrier", "carrier_name", "tracking_number", "tracking_url", "capture_amount",
                  "created_at", "shipped_at", "delivered_at", "lines")  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_tracking_url(self, shipment: Shipment) -> str | None:
        return shipment.tracking_url or None

    def get_carrier_name(self, shipment: Shipment) -> str:
        return settings.ORDERS_CARRIERS.get(shipment.carrier, (shipment.carrier,))[0]


class ReturnLineSerializer(serializers.ModelSerializer):
    line_id = serializers.IntegerField(read_only=True, help_text="The order line's id.")
    sku = serializers.CharField(source="line.sku", read_only=True)
    restock = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="Put back on sale when received; null until then."
    )

    class Meta:
        model = ReturnLine
        fields = ("line_id", "sku", "quantity", "restock", "refunded")
        read_only_fields = fields


class ReturnSerializer(serializers.ModelSerializer):
    status = EnumField(Return.Status.choices, enum_name="ReturnStatus", read_only=True)
    reason = EnumField(Return.Reason.choices, enum_name="ReturnReason", read_only=True)
    refunded = serializers.SerializerMethodField(help_text="Every line of the return is refunded.")
    lines = ReturnLineSerializer(many=True, read_only=True)

    class Meta:
        model = Return
        fields = ("number", "status", "reason", "note", "requested_by", "created_at", "received_at",
                  "amount_refunded", "refunded", "lines")  # fmt: skip
        read_only_fields = fields

    def get_refunded(self, ret: Return) -> bool:
        return all(line.refunded for line in ret.lines.all())


class StatusChangeSerializer(serializers.ModelSerializer):
    from_status = order_status(read_only=True, allow_null=True, help_text="null for the order being placed.")
    to_status = order_status(read_only=True, help_text="The same as from_status for a note (a refund in part).")

    class Meta:
        model = StatusChange
        fields = ("from_status", "to_status", "actor", "note", "at")
        read_only_fields = fields


class PaymentSummarySerializer(serializers.Serializer):
    """The order's payment as payments reports it (payments.services)."""

    id = serializers.IntegerField(read_only=True)
    status = EnumField(PaymentStatus.choices, enum_name="PaymentStatus", read_only=True)
    currency = serializers.CharField(read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    amount_authorized = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    amount_captured = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    amount_refunded = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)


class OrderSerializer(serializers.ModelSerializer):
    """An order with everything in it. The context's "payments" ({payment id: PaymentInfo}) fills `payment`."""

    status = order_status(read_only=True)
    customer_id = serializers.IntegerField(
        source="user_id", read_only=True, allow_null=True, help_text="The customer's id in accounts; null for guests."
    )
    shipping_price = serializers.DecimalField(source="shipping", max_digits=12, decimal_places=2, read_only=True)
    shipping_address = ShippingAddressSerializer(read_only=True)
    billing_address = BillingAddressSerializer(read_only=True)
    shipping_method = serializers.CharField(read_only=True, help_text="standard or express.")
    amount_refunded = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="What the shop asked payments to refund, in all."
    )
    discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True,
        help_text="Taken off the goods in all: promotion_discount + voucher_discount. total = subtotal - discount + "
                  "shipping_price (+ tax where prices are without it).",
    )  # fmt: skip
    promotion_name = serializers.CharField(
        read_only=True, allow_null=True, help_text="The automatic promotion applied; null for none."
    )
    promotion_discount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    voucher_code = serializers.CharField(read_only=True, allow_null=True, help_text="The voucher used; null for none.")
    voucher_discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="What the voucher took off the goods."
    )
    shipping_discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True,
        help_text="The delivery charge a free delivery voucher waived (shipping_price is what was charged).",
    )  # fmt: skip
    payment = serializers.SerializerMethodField()
    lines = OrderLineSerializer(many=True, read_only=True)
    shipments = ShipmentSerializer(many=True, read_only=True)
    returns = ReturnSerializer(many=True, read_only=True)
    history = StatusChangeSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ("number", "status", "customer_id", "email", "currency", "subtotal", "shipping_price", "tax",
                  "total", "discount", "promotion_name", "promotion_discount", "voucher_code", "voucher_discount",
                  "shipping_discount", "prices_include_tax", "amount_refunded", "shipping_method", "shipping_address",
                  "billing_address", "payment",
                  "lines", "shipments", "returns", "history", "created_at", "updated_at")  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in ("promotion_name", "voucher_code"):
            data[name] = data[name] or None
        return data

    @extend_schema_field(PaymentSummarySerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict | None:
        payment: PaymentInfo | None = self.context.get("payments", {}).get(order.payment_id)
        return PaymentSummarySerializer(payment).data if payment is not None else None


class ShipmentCreatedSerializer(serializers.Serializer):
    shipment = ShipmentSerializer(read_only=True, help_text="The parcel just packed.")
    order = OrderSerializer(read_only=True)


# "return" is a keyword: the class is made by hand, as its class statement would make it.
ReturnCreatedSerializer = type("ReturnCreatedSerializer", (serializers.Serializer,), {
    "__module__": __name__,
    "return": ReturnSerializer(read_only=True, help_text="The return just asked for."),
    "order": OrderSerializer(read_only=True),
})  # fmt: skip


# ---------------------------------------------------------------- input


class Input(serializers.Serializer):
    """Takes only its own fields: any other (status, total, email, id, a typo) is refused with 400, naming it."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["This operation does not take this field."]
                                                   for name in unknown})  # fmt: skip
        return super().to_internal_value(data)


def no_repeated_lines(lines: list[dict]) -> list[dict]:
    seen = set()
    for line in lines:
        if line["line_id"] in seen:
            raise serializers.ValidationError(f"Line {line['line_id']} is named twice.")
        seen.add(line["line_id"])
    return lines


class LineQuantitySerializer(Input):
    line_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="An order line's id.")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class NewShipmentSerializer(Input):
    lines = LineQuantitySerializer(
        many=True, required=False, allow_empty=False, max_length=1000,
        help_text="What goes in the parcel; leave it out for everything not yet in a parcel.",
    )  # fmt: skip
    carrier = EnumField(CARRIERS, enum_name="Carrier")
    tracking_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    ship_now = serializers.BooleanField(
        required=False, default=False, help_text="Hand it to the carrier at once, which charges for it."
    )

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        return no_repeated_lines(lines)


class ShipmentShipSerializer(Input):
    tracking_number = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Sets or replaces the parcel's tracking number."
    )


class OrderShipSerializer(Input):
    carrier = EnumField(CARRIERS, enum_name="Carrier", required=False, default=AUTO_CARRIER,
                        help_text="For the parcel of what is not in one yet.")  # fmt: skip
    tracking_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class NoFieldsSerializer(Input):
    """No fields: send {} or nothing."""


class RefundSerializer(Input):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False,
        help_text="Refund this much, without goods coming back (needs an Idempotency-Key). Leave it out to refund "
                  "the order in full.",
    )  # fmt: skip
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class NewReturnSerializer(Input):
    lines = LineQuantitySerializer(many=True, allow_empty=False, max_length=1000)
    reason = EnumField(REASONS, enum_name="ReturnReason")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        return no_repeated_lines(lines)


class LineRestockSerializer(Input):
    line_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="An order line in the return.")
    restock = serializers.BooleanField(help_text="Back to sale stock (true) or not (false: damaged, missing).")


class ReturnReceiveSerializer(Input):
    lines = LineRestockSerializer(
        many=True, required=False, max_length=1000,
        help_text="Which of the return's lines go back to sale stock; a line left out does not.",
    )  # fmt: skip

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        return no_repeated_lines(lines)


class ReturnRefundSerializer(Input):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False,
        help_text="Refund this much (needs an Idempotency-Key); leave it out to refund the value of the return's "
                  "lines not refunded yet.",
    )  # fmt: skip
    include_shipping = serializers.BooleanField(
        required=False, default=False, help_text="Refund the delivery charge too (with the lines' value)."
    )
