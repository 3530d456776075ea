from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from catalog import handlers  # noqa: F401 (registers the subscribers)
        from catalog.search import set_trigram_threshold

        connection_created.connect(set_trigram_threshold, dispatch_uid="catalog.search.trigram_threshold")
