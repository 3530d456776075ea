"""REST endpoints of catalog under /api/v1/ (private to the module; they call catalog's services)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
