from urllib.parse import parse_qs

from django.conf import settings
from django.contrib import admin, messages
from django.utils.text import Truncator

from kernel import bus
from kernel.deadletter import dead_tasks_retry
from kernel.models import DeadTask, Delivery, ProcessedEvent, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DatabaseFilter(admin.SimpleListFilter):
    """Every database has an outbox of its own (each module publishes into its own): choose which to look at."""

    title = "database"
    parameter_name = "database"

    def lookups(self, request, model_admin):
        return [(alias, alias) for alias in settings.DATABASES]

    def choices(self, changelist):
        current = self.value() or "default"
        for alias, title in self.lookup_choices:
            yield {
                "selected": current == alias,
                "query_string": changelist.get_query_string({self.parameter_name: alias}),
                "display": title,
            }

    def queryset(self, request, queryset):
        alias = self.value()
        return queryset.using(alias) if alias in settings.DATABASES else queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The outbox: each event's delivery to each subscriber. Dead ones can be tried again from here."""

    list_display = ("event_name", "consumer", "status", "attempts", "created_at", "next_attempt_at", "error")
    list_filter = (DatabaseFilter, "status", "event_name", "consumer")

    def get_queryset(self, request):
        # The list's filter, or on a delivery's own page the list filters it came from (preserved by the admin)
        alias = (
            request.GET.get(DatabaseFilter.parameter_name)
            or parse_qs(request.GET.get("_changelist_filters", "")).get(DatabaseFilter.parameter_name, [None])[0]
        )
        queryset = super().get_queryset(request)
        return queryset.using(alias) if alias in settings.DATABASES else queryset

    search_fields = ("event_id", "event_name", "consumer")
    date_hierarchy = "created_at"
    actions = ("retry",)

    @admin.display(description="last error")
    def error(self, obj: Delivery) -> str:
        return Truncator(obj.last_error).chars(80)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("kernel.change_delivery")

    @admin.action(description="Retry the selected deliveries now", permissions=["retry"])
    def retry(self, request, queryset) -> None:
        retried = bus.deliveries_retry(ids=list(queryset.values_list("pk", flat=True)), using=queryset.db)
        self.message_user(request, f"{retried} delivery(ies) handed to their subscribers again.", messages.SUCCESS)


@admin.register(DeadTask)
class DeadTaskAdmin(ReadOnlyAdmin):
    """Tasks that failed their last try, with their arguments and error. "Retry" sends them again."""

    list_display = ("name", "status", "attempts", "failed_at", "arguments", "short_error", "retried_at")
    list_filter = ("status", "name")
    search_fields = ("name", "task_id", "error")
    date_hierarchy = "failed_at"
    actions = ("retry",)

    @admin.display(description="arguments")
    def arguments(self, obj: DeadTask) -> str:
        shown = ", ".join([*(repr(arg) for arg in obj.args), *(f"{k}={v!r}" for k, v in obj.kwargs.items())])
        return Truncator(shown).chars(80)

    @admin.display(description="error")
    def short_error(self, obj: DeadTask) -> str:
        return Truncator(obj.error).chars(80)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("kernel.change_deadtask")

    @admin.action(description="Retry the selected tasks now", permissions=["retry"])
    def retry(self, request, queryset) -> None:
        sent = dead_tasks_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{sent} task(s) sent again.", messages.SUCCESS)


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(ReadOnlyAdmin):
    list_display = ("consumer", "event_id", "processed_at")
    list_filter = ("consumer",)
    search_fields = ("event_id", "consumer")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("worker", "seen_at")
