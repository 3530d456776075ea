"""REST endpoints of accounts under /api/v1/ (private to the module; they call accounts's services)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
