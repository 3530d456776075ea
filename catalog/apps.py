from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from catalog import categories, handlers  # noqa: F401 (registers the subscribers)

        request_started.connect(categories.request_started, dispatch_uid="catalog-tree-request-started")
        request_finished.connect(categories.request_finished, dispatch_uid="catalog-tree-request-finished")
