"""REST endpoints of orders under /api/v1/ (private to the module; they call orders's services)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
