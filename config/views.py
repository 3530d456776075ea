"""Error pages: the shop's templates for people, a JSON error body for /api/ clients."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults

from config.api import json_error


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form came without a valid security token (an old tab, cookies off, or another site posting)."""
    message = "This form expired or came from elsewhere. Reload the page and try again; nothing was changed."
    if _is_api(request) or "application/json" in request.headers.get("Accept", ""):
        return json_error(403, "csrf_failed", message)
    return render(request, "403_csrf.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error(404, "not_found", "No API endpoint or object at this address.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return json_error(500, "server_error", "Something went wrong on our side. It has been logged.")
    return defaults.server_error(request)
