"""recommendations: co-purchase statistics, similar items, recently viewed. Public: services, events."""

from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from recommendations import handlers  # noqa: F401 (registers the subscribers)
