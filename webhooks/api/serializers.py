"""Input and output serializers of webhooks' REST endpoints. Every field is named; read-only fields are only in the
outputs, so a client sending them (an id, a status) changes nothing. Inputs take JSON types strictly: a number
where text is expected is refused, as the schema says, rather than turned into text."""

from __future__ import annotations

from rest_framework import serializers

from webhooks import services


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Give a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"not_an_integer": "Give a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


def event_types_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.ChoiceField(choices=services.EVENT_TYPES),
                                 help_text="The event types it receives; empty: every type.", **kwargs)  # fmt: skip


def _check_url(value: str) -> str:
    try:
        return services.endpoint_url_check(url=value)
    except services.InvalidEndpoint as exc:
        raise serializers.ValidationError(str(exc)) from exc


# ---------------------------------------------------------------- inputs


class EndpointCreateInput(serializers.Serializer):
    url = StrictCharField(max_length=2000, help_text="Where to POST: https (http only in development).")
    description = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = event_types_field(required=False, default=list)

    def validate_url(self, value: str) -> str:
        return _check_url(value)


class EndpointUpdateInput(serializers.Serializer):
    """Only the fields given change."""

    url = StrictCharField(max_length=2000, required=False)
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
    event_types = event_types_field(required=False)

    def validate_url(self, value: str) -> str:
        return _check_url(value)


class RotateSecretInput(serializers.Serializer):
    grace_seconds = StrictIntegerField(
        required=False, min_value=0, max_value=7 * 24 * 60 * 60,
        help_text="How long the current secret keeps signing too (default: the shop's setting, a day).",
    )  # fmt: skip


# ---------------------------------------------------------------- outputs


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=services.EVENT_TYPES), read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    disabled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    disabled_reason = serializers.CharField(read_only=True)
    failing_since = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Its first failed try since its last successful one."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class EndpointCreatedOutput(EndpointOutput):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...): shown in this answer only, never again."
    )


class SecretRotatedOutput(serializers.Serializer):
    endpoint_id = serializers.IntegerField(read_only=True)
    secret = serializers.CharField(read_only=True, help_text="The new signing secret: shown in this answer only.")
    previous_expires_at = serializers.DateTimeField(read_only=True, help_text="Until then the previous one signs too.")


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    webhook_id = serializers.CharField(read_only=True, help_text="The webhook-id header: the same on every try.")
    endpoint_id = serializers.IntegerField(read_only=True)
    event_type = serializers.CharField(read_only=True)
    payload = serializers.JSONField(read_only=True, help_text='The body sent: {"type", "timestamp", "data"}.')
    status = serializers.ChoiceField(choices=services.MessageStatus.choices, read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    next_attempt_at = serializers.DateTimeField(read_only=True)
    deliver_until = serializers.DateTimeField(read_only=True, help_text="No try after this.")
    delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_error = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class AttemptOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    message_id = serializers.IntegerField(read_only=True)
    number = serializers.IntegerField(read_only=True)
    at = serializers.DateTimeField(read_only=True)
    outcome = serializers.ChoiceField(choices=services.AttemptOutcome.choices, read_only=True)
    status_code = serializers.IntegerField(read_only=True, allow_null=True)
    latency_ms = serializers.IntegerField(read_only=True, allow_null=True)
    error = serializers.CharField(read_only=True)
    response_body = serializers.CharField(read_only=True, help_text="The start of the endpoint's answer.")
