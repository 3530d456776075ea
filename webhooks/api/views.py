"""Webhook subscriptions over the REST API (scope "webhooks"): endpoints, their secret, test pings, and the
messages and tries of each. Writes go through webhooks.services; lists read webhooks' own tables, paged by cursor.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import ApiKeyInfo
from kernel.api import Conflict, StrictFilterSet
from webhooks import services
from webhooks.api.serializers import (
    AttemptOutput,
    EndpointCreatedOutput,
    EndpointCreateInput,
    EndpointOutput,
    EndpointUpdateInput,
    MessageOutput,
    RotateSecretInput,
    SecretRotatedOutput,
)
from webhooks.models import Attempt, Endpoint, Message

SCOPE = "webhooks"
TAGS = ["webhooks"]
ORDERING_NOTE = (
    "Messages are not guaranteed to arrive in order, not even for one resource: order them by the payload's "
    "`timestamp` and the resource's id in `data`, and deduplicate on the `webhook-id` header."
)


MAX_ID = 2**63 - 1  # a bigint: an id in the path beyond it names nothing (and some databases refuse to compare it)


class IdsInRange:
    """After authentication and the scope check: a path id too large for the database is a 404, not a 500."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if any(isinstance(value, int) and value > MAX_ID for value in kwargs.values()):
            raise exceptions.NotFound("No such object.")


def owner_of(request) -> int | None:
    """The API key whose endpoints a request sees (its own only); None for a staff session, which sees all."""
    return request.auth.id if isinstance(request.auth, ApiKeyInfo) else None


def _endpoint(pk: int, request) -> services.EndpointInfo:
    """The endpoint, if the caller may see it: a key sees only the endpoints it made (others are a 404, as if
    they did not exist)."""
    try:
        endpoint = services.endpoint_get(endpoint_id=pk)
    except services.EndpointNotFound:
        raise exceptions.NotFound("No such webhook endpoint.") from None
    owner = owner_of(request)
    if owner is not None and endpoint.owner_key_id != owner:
        raise exceptions.NotFound("No such webhook endpoint.")
    return endpoint


# What a key must also be able to read to receive an event type: a payload carries the order (its customer's
# email and address) or the product, so subscribing must not be a way around orders:read or catalog:read.
READ_SCOPE_OF_TYPE = {"order": "orders:read", "return": "orders:read", "stock": "catalog:read",
                      "product": "catalog:read"}  # fmt: skip


def check_event_scopes(request, event_types) -> None:
    if not isinstance(request.auth, ApiKeyInfo):
        return  # a staff session has the scopes its admin permissions give (config.api.granted_scopes)
    types = list(event_types) or list(services.EVENT_TYPES)  # none: every type
    for scope in sorted({READ_SCOPE_OF_TYPE[t.split(".")[0]] for t in types if t.split(".")[0] in READ_SCOPE_OF_TYPE}):
        if not request.auth.grants(scope):
            raise exceptions.PermissionDenied(
                f"This key lacks the scope {scope}, which the event types asked for need (their payloads carry "
                f"that data).",
                code="missing_scope",
            )


def _invalid(exc: services.InvalidEndpoint) -> exceptions.ValidationError:
    field = "event_types" if "event type" in str(exc) else "url"
    return exceptions.ValidationError({field: [str(exc)]})


# ---------------------------------------------------------------- endpoints


class EndpointFilter(StrictFilterSet):
    # "true" or "false" only: a BooleanFilter would take "null" (or "unknown") as no filter at all.
    is_active = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_active",
        help_text="Only active (true) or disabled (false) endpoints.",
    )  # fmt: skip

    def filter_active(self, queryset, name: str, value: str):
        return queryset.filter(is_active=value == "true")

    class Meta:
        model = Endpoint
        fields = ("is_active",)


class EndpointListCreate(generics.ListAPIView):
    required_scopes = {"GET": SCOPE, "POST": SCOPE}
    serializer_class = EndpointOutput
    filterset_class = EndpointFilter
    ordering = "-id"
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        owner = None if getattr(self, "swagger_fake_view", False) else owner_of(self.request)
        endpoints = Endpoint.objects.all()
        return endpoints if owner is None else endpoints.filter(owner_key_id=owner)

    @extend_schema(tags=TAGS, summary="List webhook endpoints")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="Create a webhook endpoint",
        description="The answer carries the endpoint's signing secret, this once only. " + ORDERING_NOTE,
        request=EndpointCreateInput,
        responses={201: EndpointCreatedOutput},
    )
    def post(self, request, *args, **kwargs):
        data = _valid(EndpointCreateInput, request.data)
        check_event_scopes(request, data.get("event_types", ()))
        try:
            created = services.endpoint_create(**data, owner_key_id=owner_of(request))
        except services.InvalidEndpoint as exc:
            raise _invalid(exc) from exc
        body = {**EndpointOutput(created.endpoint).data, "secret": created.secret}
        return Response(EndpointCreatedOutput(body).data, status=status.HTTP_201_CREATED)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class EndpointDetail(IdsInRange, APIView):
    required_scopes = {"GET": SCOPE, "PATCH": SCOPE, "DELETE": SCOPE}

    @extend_schema(tags=TAGS, summary="Get a webhook endpoint", responses={200: EndpointOutput})
    def get(self, request, pk: int, **kwargs):
        return Response(EndpointOutput(_endpoint(pk, request)).data)

    @extend_schema(
        tags=TAGS,
        summary="Change a webhook endpoint",
        description="Only the fields given change.",
        request=EndpointUpdateInput,
        responses={200: EndpointOutput},
    )
    def patch(self, request, pk: int, **kwargs):
        data = _valid(EndpointUpdateInput, request.data)
        current = _endpoint(pk, request)
        check_event_scopes(request, data.get("event_types", current.event_types))
        try:
            endpoint = services.endpoint_update(endpoint_id=pk, **data)
        except services.EndpointNotFound:
            raise exceptions.NotFound("No such webhook endpoint.") from None
        except services.InvalidEndpoint as exc:
            raise _invalid(exc) from exc
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        tags=TAGS,
        summary="Delete a webhook endpoint",
        description="With its secrets, messages and their tries.",
        responses={204: OpenApiResponse(description="Deleted.")},
    )
    def delete(self, request, pk: int, **kwargs):
        _endpoint(pk, request)
        try:
            services.endpoint_delete(endpoint_id=pk)
        except services.EndpointNotFound:
            raise exceptions.NotFound("No such webhook endpoint.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecret(IdsInRange, APIView):
    required_scopes = {"POST": SCOPE}

    @extend_schema(
        tags=TAGS,
        summary="Rotate an endpoint's signing secret",
        description="A new secret, shown in this answer only. The current one keeps signing until "
        "`previous_expires_at`, so requests carry two signatures meanwhile and either verifies.",
        request=RotateSecretInput,
        responses={200: SecretRotatedOutput},
    )
    def post(self, request, pk: int, **kwargs):
        data = _valid(RotateSecretInput, request.data)
        _endpoint(pk, request)
        try:
            rotated = services.endpoint_rotate_secret(endpoint_id=pk, grace_seconds=data.get("grace_seconds"))
        except services.EndpointNotFound:
            raise exceptions.NotFound("No such webhook endpoint.") from None
        return Response(SecretRotatedOutput(rotated).data)


class EndpointEnable(IdsInRange, APIView):
    required_scopes = {"POST": SCOPE}

    @extend_schema(
        tags=TAGS,
        summary="Enable a disabled webhook endpoint",
        description="Its waiting messages are sent again.",
        request=None,
        responses={200: EndpointOutput},
    )
    def post(self, request, pk: int, **kwargs):
        _endpoint(pk, request)
        try:
            endpoint = services.endpoint_enable(endpoint_id=pk)
        except services.EndpointNotFound:
            raise exceptions.NotFound("No such webhook endpoint.") from None
        return Response(EndpointOutput(endpoint).data)


class EndpointPing(IdsInRange, APIView):
    required_scopes = {"POST": SCOPE}

    @extend_schema(
        tags=TAGS,
        summary="Send a test message to an endpoint",
        description="A `webhook.test` message, sent now through the same pipeline as events (signed, logged, "
        "retried). 409 if the endpoint is disabled.",
        request=None,
        responses={202: MessageOutput},
    )
    def post(self, request, pk: int, **kwargs):
        _endpoint(pk, request)
        try:
            message = services.endpoint_ping(endpoint_id=pk)
        except services.EndpointNotFound:
            raise exceptions.NotFound("No such webhook endpoint.") from None
        except services.EndpointDisabled:
            raise Conflict("The endpoint is disabled: enable it first.") from None
        return Response(MessageOutput(message).data, status=202)


# ---------------------------------------------------------------- messages and tries


class MessageFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=services.MessageStatus.choices)
    event_type = django_filters.ChoiceFilter(choices=[(t, t) for t in (*services.EVENT_TYPES,
                                                                       services.TEST_EVENT_TYPE)])  # fmt: skip
    created_since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Made at or after this time (ISO 8601)."
    )

    class Meta:
        model = Message
        fields = ("status", "event_type", "created_since")


class EndpointMessages(IdsInRange, generics.ListAPIView):
    required_scopes = {"GET": SCOPE}
    serializer_class = MessageOutput
    filterset_class = MessageFilter
    ordering = "-id"
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return Message.objects.none()
        _endpoint(self.kwargs["pk"], self.request)
        return Message.objects.filter(endpoint_id=self.kwargs["pk"])

    @extend_schema(tags=TAGS, summary="List an endpoint's messages", description=ORDERING_NOTE)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MessageAttempts(IdsInRange, generics.ListAPIView):
    required_scopes = {"GET": SCOPE}
    serializer_class = AttemptOutput
    ordering = "number"  # the first try first
    ordering_fields = ("number",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Attempt.objects.none()
        _endpoint(self.kwargs["pk"], self.request)
        if not Message.objects.filter(pk=self.kwargs["message_id"], endpoint_id=self.kwargs["pk"]).exists():
            raise exceptions.NotFound("No such message of this webhook endpoint.")
        return Attempt.objects.filter(message_id=self.kwargs["message_id"])

    @extend_schema(tags=TAGS, summary="List the tries of one of an endpoint's messages")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MessageReplay(IdsInRange, APIView):
    required_scopes = {"POST": SCOPE}

    @extend_schema(
        tags=TAGS,
        summary="Send a message again",
        description="A new try now, with the same webhook-id and body, whatever the message's status. 409 if the "
        "endpoint is disabled or a try of the message is in flight.",
        request=None,
        responses={202: MessageOutput},
    )
    def post(self, request, pk: int, message_id: int, **kwargs):
        _endpoint(pk, request)
        if not Message.objects.filter(pk=message_id, endpoint_id=pk).exists():
            raise exceptions.NotFound("No such message of this webhook endpoint.")
        try:
            message = services.message_replay(message_id=message_id)
        except services.EndpointDisabled:
            raise Conflict("The endpoint is disabled: enable it first.") from None
        except services.MessageInFlight:
            raise Conflict("A try of this message is in flight: replay it once that ends.") from None
        return Response(MessageOutput(message).data, status=202)
