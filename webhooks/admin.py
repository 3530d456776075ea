"""Webhooks in the admin: endpoints (the signing secret shown once, when it is made or rotated), messages with
their tries inline, and actions (ping, rotate, enable, disable, replay, retry), each through webhooks.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from webhooks import services
from webhooks.models import Attempt, Endpoint, Message


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in services.EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = Endpoint
        fields = ("url", "description", "event_types")

    def clean_url(self) -> str:
        try:
            return services.endpoint_url_check(url=self.cleaned_data["url"])
        except services.InvalidEndpoint as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("url", "description", "is_active", "types", "failing_since", "disabled_reason", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("is_active", "disabled_at", "disabled_reason", "failing_since", "created_at", "updated_at")
    actions = ("ping", "rotate_secret", "enable", "disable")

    @admin.display(description="event types")
    def types(self, obj: Endpoint) -> str:
        return ", ".join(obj.event_types) or "all"

    def save_model(self, request, obj: Endpoint, form, change: bool) -> None:
        data = form.cleaned_data  # checked by the form as the services check it
        if change:
            services.endpoint_update(endpoint_id=obj.pk, url=data["url"], description=data["description"],
                                     event_types=data["event_types"])  # fmt: skip
            return
        created = services.endpoint_create(url=data["url"], description=data["description"],
                                           event_types=data["event_types"])  # fmt: skip
        obj.pk = created.endpoint.id
        messages.warning(request, format_html(
            "The signing secret of {}, shown this once: <code>{}</code>. Give it to the receiver now.",
            created.endpoint.url, created.secret))  # fmt: skip

    def delete_model(self, request, obj: Endpoint) -> None:
        services.endpoint_delete(endpoint_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for pk in list(queryset.values_list("pk", flat=True)):
            services.endpoint_delete(endpoint_id=pk)

    @admin.action(description="Send a test message (webhook.test)", permissions=["change"])
    def ping(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            try:
                message = services.endpoint_ping(endpoint_id=pk)
            except services.EndpointDisabled:
                self.message_user(request, f"Endpoint {pk} is disabled: enable it first.", messages.ERROR)
            else:
                self.message_user(request, f"Test message {message.webhook_id} sent to endpoint {pk}.")

    @admin.action(description="Rotate the signing secret (the old one signs for a grace period)",
                  permissions=["change"])  # fmt: skip
    def rotate_secret(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            rotated = services.endpoint_rotate_secret(endpoint_id=pk)
            self.message_user(request, format_html(
                "New secret of endpoint {}, shown this once: <code>{}</code>. The previous one signs until {}.",
                pk, rotated.secret, f"{rotated.previous_expires_at:%Y-%m-%d %H:%M} UTC"), messages.WARNING)  # fmt: skip

    @admin.action(description="Enable (waiting messages are sent)", permissions=["change"])
    def enable(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.endpoint_enable(endpoint_id=pk)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.endpoint_disable(endpoint_id=pk, reason=f"disabled by staff:{request.user.pk}")
        self.message_user(request, f"{queryset.count()} endpoint(s) disabled.", messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "outcome", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields
    ordering = ("number",)

    @admin.display(description="response")
    def response_excerpt(self, obj: Attempt) -> str:
        return Truncator(obj.response_body).chars(200)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("webhook_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "last_error",
                    "created_at")  # fmt: skip
    list_filter = ("status", "event_type", "endpoint")
    search_fields = ("webhook_id", "=source_event_id")
    date_hierarchy = "created_at"
    list_select_related = ("endpoint",)
    fields = ("webhook_id", "endpoint", "event_type", "status", "attempts", "next_attempt_at", "deliver_until",
              "delivered_at", "last_error", "created_at", "source_event_id", "body")  # fmt: skip
    readonly_fields = fields
    inlines = (AttemptInline,)
    actions = ("replay", "retry")
    change_form_template = "admin/webhooks/message/change_form.html"

    @admin.display(description="payload")
    def body(self, obj: Message) -> str:
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        own = [path("<int:pk>/replay/", self.admin_site.admin_view(self.replay_view), name="webhooks_message_replay")]
        return own + super().get_urls()

    def _replay(self, request, pk: int) -> None:
        try:
            message = services.message_replay(message_id=pk)
        except services.WebhookError as exc:
            self.message_user(request, f"Message {pk} not replayed: {type(exc).__name__} {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{message.webhook_id} sent again.", messages.SUCCESS)

    @admin.action(description="Replay: send again now (also if delivered)", permissions=["change"])
    def replay(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            self._replay(request, pk)

    @admin.action(description="Retry now the pending or failed ones", permissions=["change"])
    def retry(self, request, queryset) -> None:
        count = services.messages_retry(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} message(s) will be tried now.", messages.SUCCESS)

    def replay_view(self, request, pk: int):
        """The "Replay" button of a message's page."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        return require_POST(self._replay_view)(request, pk)

    def _replay_view(self, request, pk: int):
        get_object_or_404(Message, pk=pk)
        self._replay(request, pk)
        return redirect(reverse("admin:webhooks_message_change", args=[pk]))
