from django.apps import AppConfig


class KernelConfig(AppConfig):
    name = "kernel"
    verbose_name = "Kernel: event outbox"

    def ready(self) -> None:
        from django.urls import register_converter

        # The bus hands events to the kernel.run_handler task by name; register it in every process (web, worker,
        # tests), not only where Celery's autodiscovery runs.
        from kernel import tasks  # noqa: F401
        from kernel.api import CodeConverter, IdConverter

        # <id:...> and <code:...> in the modules' API paths (kernel.api); ready() runs before any URLconf is loaded.
        register_converter(IdConverter, "id")
        register_converter(CodeConverter, "code")
