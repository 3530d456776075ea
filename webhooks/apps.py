from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks import handlers, tasks  # noqa: F401  (subscribers; the delivery task, found by name)
