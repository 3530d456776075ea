"""REST endpoints of webhooks under /api/v1/ (private to the module; they call webhooks's services)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
