"""Orders' REST endpoints (private to orders), one view per operation.

Reads come from orders' own models, in the same number of queries for a page of 3 orders as for 100. Every action
calls the orders service the admin's action calls, and answers with the order as it is afterwards. Where that
service lets a repeat change nothing quietly (shipping a parcel shipped already: a double click, a redelivered
event), the API asks it to refuse (strict=True), so a request sent twice without an Idempotency-Key answers 409 the
second time instead of doing anything twice. Orders' errors become answers: no such order or parcel 404, the request
itself wrong 400 naming the field (services' OrderError.field), the order's state refusing it 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import django_filters
from django.db import connections
from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import ApiKeyInfo
from kernel.api import Conflict, FreshListCache, StrictFilterSet
from kernel.db import db_for_module
from orders import services
from orders.api import serializers as io
from orders.models import Order, Return, ReturnLine, Shipment, ShipmentLine
from payments.services import payments_get

READ = {"GET": "orders:read"}
WRITE = {"POST": "orders:write"}
ERROR = {"$ref": "#/components/schemas/Error"}

# ---------------------------------------------------------------- reading


def orders() -> QuerySet[Order]:
    """Orders with everything the API shows of them, prefetched: seven queries for any number of orders."""
    return Order.objects.prefetch_related(
        "lines",
        Prefetch("shipments", queryset=Shipment.objects.order_by("number").prefetch_related(
            Prefetch("lines", queryset=ShipmentLine.objects.select_related("line").order_by("id")))),
        Prefetch("returns", queryset=Return.objects.order_by("number").prefetch_related(
            Prefetch("lines", queryset=ReturnLine.objects.select_related("line").order_by("id")))),
        "history",
    )  # fmt: skip


def represent(order_list: list[Order]) -> list[dict]:
    """The orders as the API shows them, with their payments from payments (one query for all of them)."""
    payments = payments_get(payment_ids=[order.payment_id for order in order_list if order.payment_id])
    return io.OrderSerializer(order_list, many=True, context={"payments": payments}).data


class OrderFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=Order.Status.choices, help_text="One status, or several: `?status=paid&status=fulfilling`."
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Placed at or after this time (ISO 8601)."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Placed before this time (ISO 8601)."
    )
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte",
        help_text="Changed at or after this time (ISO 8601): its status, a parcel, a return, a refund.",
    )  # fmt: skip
    updated_before = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="lt", help_text="Last changed before this time (ISO 8601)."
    )
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact", help_text="The exact address.")
    number = django_filters.CharFilter(field_name="number", help_text="The order number, NW-...")

    class Meta:
        model = Order
        fields = ("status", "created_after", "created_before", "updated_since", "updated_before", "email", "number")


ORDERING = OpenApiParameter(
    "ordering", OpenApiTypes.STR, OpenApiParameter.QUERY,
    enum=["-created_at", "created_at", "-updated_at", "updated_at"],
    description="The order of the list, which the cursor follows: newest first (`-created_at`) by default.",
)  # fmt: skip


@extend_schema_view(get=extend_schema(operation_id="orders_list", parameters=[ORDERING]))
class OrderList(FreshListCache, generics.ListAPIView):
    """Orders, newest first by default. For incremental sync: `updated_since` with `ordering=updated_at`, following
    `next` to the end, then again from the time the last run started."""

    required_scopes = READ
    serializer_class = io.OrderSerializer
    filterset_class = OrderFilter
    ordering = "-created_at"
    ordering_fields = ("created_at", "updated_at")

    def get_queryset(self) -> QuerySet[Order]:
        return orders()

    def list_freshness(self) -> tuple:
        """Every change to an order (its status, a parcel, a return, a refund, a payment attached) moves its
        updated_at (orders.state.touch), and the index on it answers this at once. Fixed SQL: on every read of a
        cached list, the ORM's compiling costs more than the lookup."""
        connection = connections[db_for_module("orders")]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX({quote('updated_at')}) FROM {quote(Order._meta.db_table)}")  # noqa: S608
            return tuple(cursor.fetchone())

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(represent(page))


NUMBER = OpenApiParameter("number", OpenApiTypes.STR, OpenApiParameter.PATH, description="The order number, NW-...")
SHIPMENT = OpenApiParameter(
    "shipment_number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The parcel's number in the order: 1, 2..."
)
RETURN = OpenApiParameter(
    "return_number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The return's number in the order: 1, 2..."
)


class OrderDetail(generics.RetrieveAPIView):
    """One order with its lines, parcels, returns, payment and status history. Answers carry an ETag: send it
    back in If-None-Match to get 304 while the order is unchanged."""

    required_scopes = READ
    serializer_class = io.OrderSerializer
    lookup_field = "number"
    filter_backends = ()
    ordering = None
    ordering_fields = ()
    filterset_class = None

    def get_queryset(self) -> QuerySet[Order]:
        return orders()

    @extend_schema(operation_id="orders_retrieve", parameters=[NUMBER])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return Response(represent([self.get_object()])[0])


# ---------------------------------------------------------------- acting


def actor(request: Request) -> str:
    """Who, in the order's history: the API key (by id) or the staff member of the browsable API."""
    if isinstance(request.auth, ApiKeyInfo):
        return f"apikey:{request.auth.id}"
    return f"staff:{request.user.pk}"


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


@contextmanager
def answers_for(number: str) -> Iterator[None]:
    """Orders' exceptions as the API's answers."""
    try:
        yield
    except services.OrderNotFound as exc:
        raise exceptions.NotFound(f"No order {number}.") from exc
    except (services.ShipmentNotFound, services.ReturnNotFound) as exc:
        raise exceptions.NotFound(sentence(exc)) from exc
    except services.OrderError as exc:
        if exc.field:
            raise exceptions.ValidationError({exc.field: [sentence(exc)]}) from exc
        raise Conflict(sentence(exc)) from exc


class IdempotencyKeyRequired(exceptions.APIException):
    status_code = 400
    default_code = "idempotency_key_required"
    default_detail = (
        "A refund of an amount cannot be told from a second refund: send it with an Idempotency-Key header, and the "
        "same key again if you are not sure it arrived."
    )


def require_idempotency_key(request: Request) -> str:
    """For actions the order's state cannot tell from a repeat (a refund of an amount). The Idempotency-Key
    middleware answers a repeat with the first answer; the key, with whose it is, also goes to the service, which
    keeps it with the refund, so a repeat that reaches the view (the first answer lost to a crash) refunds nothing
    more. Returns that key."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise IdempotencyKeyRequired()
    who = f"key:{request.auth.prefix}" if isinstance(request.auth, ApiKeyInfo) else f"user:{request.user.pk}"
    return f"{who}:{key}"


class OrderAction(APIView):
    """An action on one order (orders:write): the input is validated, the order must exist (404 before 400),
    and the service runs."""

    required_scopes = WRITE
    input_class: type[io.Input] = io.NoFieldsSerializer

    def begin(self, request: Request, number: str) -> dict:
        if not Order.objects.filter(number=number).exists():
            raise exceptions.NotFound(f"No order {number}.")
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @staticmethod
    def order(number: str, status: int = 200) -> Response:
        return Response(represent([orders().get(number=number)])[0], status=status)


def action_schema(operation_id: str, summary: str, request, conflict: str, *, parameters=(), created=None):
    """The schema of an action: its input, the order (or 201 with what it created and the order), and its 409."""
    if created:
        responses = {201: OpenApiResponse(created, description="What was made, and the order as it is now.")}
    else:
        responses = {200: OpenApiResponse(io.OrderSerializer, description="The order as it is now.")}
    responses[409] = OpenApiResponse(ERROR, description=conflict)
    return extend_schema(operation_id=operation_id, summary=summary, request=request, responses=responses,
                         parameters=[NUMBER, *parameters])  # fmt: skip


class ShipmentCreate(OrderAction):
    """Pack a parcel of some lines (or of everything not in a parcel yet), with its carrier and tracking number;
    with `ship_now` it is handed to the carrier at once, which charges the customer for it. As the admin's "New
    parcel" form. An order that was paid becomes fulfilling."""

    input_class = io.NewShipmentSerializer

    @action_schema("orders_shipments_create", "Pack a parcel", io.NewShipmentSerializer,
                   "The order is not paid, is cancelled or shipped, or the lines are already in parcels.",
                   created=io.ShipmentCreatedSerializer)  # fmt: skip
    def post(self, request: Request, version: str, number: str) -> Response:
        data = self.begin(request, number)
        who = actor(request)
        lines = [(line["line_id"], line["quantity"]) for line in data["lines"]] if "lines" in data else None
        with answers_for(number):
            parcel = services.shipment_create(number=number, carrier=data["carrier"], actor=who, lines=lines,
                                              tracking_number=data["tracking_number"])  # fmt: skip
            if data["ship_now"]:
                services.shipment_ship(number=number, shipment=parcel.number, actor=who)
        order = orders().get(number=number)
        shipment = next(s for s in order.shipments.all() if s.number == parcel.number)
        body = {"shipment": io.ShipmentSerializer(shipment).data, "order": represent([order])[0]}
        return Response(body, status=201)


class ShipmentShip(OrderAction):
    """Hand a parcel to its carrier: payments captures its part of the payment (the last parcel the rest) and the
    customer gets its tracking link. As the admin's "hand to the carrier"."""

    input_class = io.ShipmentShipSerializer

    @action_schema("orders_shipment_ship", "Ship a parcel", io.ShipmentShipSerializer,
                   "The parcel has been shipped already.", parameters=[SHIPMENT])  # fmt: skip
    def post(self, request: Request, version: str, number: str, shipment_number: int) -> Response:
        data = self.begin(request, number)
        with answers_for(number):
            services.shipment_ship(number=number, shipment=shipment_number, actor=actor(request),
                                   tracking_number=data.get("tracking_number"), strict=True)  # fmt: skip
        return self.order(number)


class ShipmentDeliver(OrderAction):
    """The parcel was delivered. As the admin's "mark delivered" on a parcel."""

    @action_schema("orders_shipment_deliver", "Mark a parcel delivered", io.NoFieldsSerializer,
                   "The parcel has not been shipped yet, or has been delivered already.",
                   parameters=[SHIPMENT])  # fmt: skip
    def post(self, request: Request, version: str, number: str, shipment_number: int) -> Response:
        self.begin(request, number)
        with answers_for(number):
            services.shipment_deliver(number=number, shipment=shipment_number, actor=actor(request), strict=True)
        return self.order(number)


class OrderShip(OrderAction):
    """Ship everything: what is not in a parcel yet goes in one (with `carrier` and `tracking_number`) and every
    parcel being packed is handed to its carrier, each capturing its part. As the admin's "Mark shipped"."""

    input_class = io.OrderShipSerializer

    @action_schema("orders_ship", "Ship the whole order", io.OrderShipSerializer,
                   "The order is not paid, is cancelled, or has nothing left to ship.")  # fmt: skip
    def post(self, request: Request, version: str, number: str) -> Response:
        data = self.begin(request, number)
        with answers_for(number):
            services.order_ship(number=number, actor=actor(request), carrier=data["carrier"],
                                tracking_number=data["tracking_number"], strict=True)  # fmt: skip
        return self.order(number)


class OrderDeliver(OrderAction):
    """Every parcel on its way was delivered. As the admin's "Mark delivered"."""

    @action_schema("orders_deliver", "Mark the order delivered", io.NoFieldsSerializer,
                   "Nothing of the order has been shipped, or it has been delivered already.")  # fmt: skip
    def post(self, request: Request, version: str, number: str) -> Response:
        self.begin(request, number)
        with answers_for(number):
            services.order_deliver(number=number, actor=actor(request), strict=True)
        return self.order(number)


class OrderCancel(OrderAction):
    """Cancel an order before it ships: its stock goes back on sale and its payment is voided (or refunded). As
    the admin's "Cancel"."""

    @action_schema("orders_cancel", "Cancel the order", io.NoFieldsSerializer,
                   "The order has been shipped or cancelled already.")  # fmt: skip
    def post(self, request: Request, version: str, number: str) -> Response:
        self.begin(request, number)
        with answers_for(number):
            services.order_cancel(number=number, actor=actor(request))
        return self.order(number)


class OrderRefund(OrderAction):
    """Without `amount`: refund a shipped order in full (it becomes refunded), as the admin's "Refund in full".
    With `amount`: refund that much without goods coming back (a goodwill refund), as the admin's "Refund part";
    this needs an Idempotency-Key header, as nothing else tells it from a second refund."""

    input_class = io.RefundSerializer

    @action_schema(
        "orders_refund",
        "Refund the order, in full or in part",
        io.RefundSerializer,
        "The order has not shipped, has no payment, or has been refunded (in full, or as much as asked).",
    )
    def post(self, request: Request, version: str, number: str) -> Response:
        data = self.begin(request, number)
        with answers_for(number):
            if "amount" in data:
                request_key = require_idempotency_key(request)
                services.order_refund_amount(number=number, amount=data["amount"], actor=actor(request),
                                             note=data["note"] or "Goodwill refund",
                                             request_key=request_key)  # fmt: skip
            else:
                services.order_refund(number=number, actor=actor(request), note=data["note"])
        return self.order(number)


class ReturnCreate(OrderAction):
    """Ask, for the customer, to return delivered items (within the shop's return period), with a reason. As the
    customer's own "Return items" on their order page."""

    input_class = io.NewReturnSerializer

    @action_schema("orders_returns_create", "Ask for a return", io.NewReturnSerializer,
                   "The items were not delivered, too long ago, or are in a return already.",
                   created=io.ReturnCreatedSerializer)  # fmt: skip
    def post(self, request: Request, version: str, number: str) -> Response:
        data = self.begin(request, number)
        with answers_for(number):
            ret = services.return_request(
                number=number, lines=[(line["line_id"], line["quantity"]) for line in data["lines"]],
                reason=data["reason"], note=data["note"], actor=actor(request), on_behalf=True,
            )  # fmt: skip
        order = orders().get(number=number)
        created = next(r for r in order.returns.all() if r.number == ret.number)
        return Response({"return": io.ReturnSerializer(created).data, "order": represent([order])[0]}, status=201)


class ReturnReceive(OrderAction):
    """The return's parcel arrived: each line goes back to sale stock or not. As the admin's "Receive"."""

    input_class = io.ReturnReceiveSerializer

    @action_schema("orders_return_receive", "Receive a return", io.ReturnReceiveSerializer,
                   "The return has been received already, or was cancelled.", parameters=[RETURN])  # fmt: skip
    def post(self, request: Request, version: str, number: str, return_number: int) -> Response:
        data = self.begin(request, number)
        restock = {line["line_id"]: line["restock"] for line in data.get("lines", [])}
        with answers_for(number):
            services.return_receive(number=number, ret=return_number, restock=restock, actor=actor(request),
                                    strict=True)  # fmt: skip
        return self.order(number)


class ReturnRefund(OrderAction):
    """Refund a return: the value of its lines not refunded yet (with the delivery charge if asked), or `amount`
    (which needs an Idempotency-Key header). The goods need not have arrived. As the admin's "Refund" on a return."""

    input_class = io.ReturnRefundSerializer

    @action_schema("orders_return_refund", "Refund a return", io.ReturnRefundSerializer,
                   "The return's lines are refunded already, it was cancelled, or the order has nothing left to "
                   "refund.", parameters=[RETURN])  # fmt: skip
    def post(self, request: Request, version: str, number: str, return_number: int) -> Response:
        data = self.begin(request, number)
        with answers_for(number):
            request_key = require_idempotency_key(request) if "amount" in data else None
            services.return_refund(number=number, ret=return_number, actor=actor(request), amount=data.get("amount"),
                                   include_shipping=data["include_shipping"], request_key=request_key)  # fmt: skip
        return self.order(number)
