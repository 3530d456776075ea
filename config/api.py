"""REST API plumbing shared by every module's endpoints, wired in by settings (REST_FRAMEWORK, MIDDLEWARE), so no
module imports it: a module's api package declares, per view, which scope each method needs and what it lists.

    class OrderList(generics.ListAPIView):
        required_scopes = {"GET": "orders:read"}     # HEAD and OPTIONS need GET's scope; a method not named: 403
        ordering = "-updated_at"                     # the default order, also the cursor's
        ordering_fields = ["created_at", "updated_at"]
        filterset_class = OrderFilter

- Authentication: `Authorization: Bearer shk_...` (an API key, accounts.services.api_key_authenticate), or a
  staff member's session (the browsable API; CSRF applies). No key, a wrong, revoked or expired key: 401; guessing
  keys is throttled per address.
- Permission: the view's required scope for the method (ScopePermission); a key without it gets 403 naming it.
  A staff session has the scopes its admin permissions give (SCOPE_PERMISSIONS); a customer's session none.
- Cursor pagination everywhere (`?cursor=...&page_size=...`, at most 100 a page), django-filter for filters and
  DRF's OrderingFilter for `?ordering=`, which the cursor follows.
- A token bucket per key (TokenBucketThrottle): 429 with Retry-After when it is empty.
- Idempotency-Key on POST (IdempotencyMiddleware, kernel.idempotency) and ETag / If-None-Match on reads
  (ApiConditionalGetMiddleware).
- One error shape for every 4xx and 5xx:
  {"error": {"code": "validation_error", "message": "...", "fields": {"quantity": ["..."]}}}
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.pagination import CursorPagination as DrfCursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.services import API_SCOPES, ApiKeyInfo, ApiKeyInvalid, api_key_authenticate, scope_granted
from kernel.idempotency import KeyReused, RequestInProgress, idempotency_begin, idempotency_finish, idempotency_release

API_PREFIX = "/api/"
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- errors


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views reads DRF's settings, which name this module's classes.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such object, or not one this key may see.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's handler500 answers with a JSON 500 for /api/ paths
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = error_body("validation_error", "The request has invalid fields.", fields)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


# ---------------------------------------------------------------- request bodies


def _text_problem(value: Any) -> str | None:
    """What makes a parsed JSON value unstorable, whichever field it lands in: a lone surrogate (\\ud800 in JSON
    parses, but is no character and cannot be encoded) in any string or key, or a NUL character in a key
    (PostgreSQL's jsonb refuses it). A NUL in a string value is left to the field, whose error names it."""
    stack = [(value, False)]
    while stack:
        item, is_key = stack.pop()
        if isinstance(item, dict):
            stack.extend((key, True) for key in item)
            stack.extend((v, False) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, False) for v in item)
        elif isinstance(item, str):
            if is_key and "\x00" in item:
                return "Keys may not contain NUL characters."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Text may not contain unpaired surrogates (\\ud800 to \\udfff)."
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing (400) what parses but could never be stored, before any view sees it."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = _text_problem(data)
        if problem:
            raise exceptions.ParseError(f"JSON parse error - {problem}")
        return data


# ---------------------------------------------------------------- who is calling


class ApiClient:
    """request.user for a request signed with an API key: authenticated, never staff, not a user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = id = None

    def __init__(self, key: ApiKeyInfo) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.prefix})"


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


RECENT_FAILURES: dict[str, float] = {}  # address -> until when this process checks its bucket first


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise exceptions.AuthenticationFailed("Send the API key as: Authorization: Bearer <key>.")
            return None
        # Guessing keys costs a token of the caller's address's bucket (a tenth of a key's). An address that sent
        # a wrong key in the last minute (this process remembers it) is checked before any lookup, so a guesser
        # whose bucket is empty costs no query; a clean address pays nothing for the check.
        ip = request.META.get("REMOTE_ADDR", "")
        bucket = {"rate": settings.API_THROTTLE_RATE / 10, "burst": max(1, settings.API_THROTTLE_BURST // 10)}
        if RECENT_FAILURES.get(ip, 0.0) > time.monotonic():
            allowed, wait = BUCKETS.take(f"auth-ip:{ip}", peek=True, **bucket)
            if not allowed:
                raise exceptions.Throttled(wait=max(1, math.ceil(wait)))
        try:
            key = api_key_authenticate(token=token)
        except ApiKeyInvalid as exc:
            RECENT_FAILURES[ip] = time.monotonic() + 60
            if len(RECENT_FAILURES) > 10_000:
                RECENT_FAILURES.clear()
            allowed, wait = BUCKETS.take(f"auth-ip:{ip}", **bucket)
            if not allowed:
                raise exceptions.Throttled(wait=max(1, math.ceil(wait))) from exc
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        return ApiClient(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class StaffSessionAuthentication(SessionAuthentication):
    """A signed-in staff member's session, for the browsable API (CSRF is checked on writes)."""


def required_scope(view: Any, method: str) -> str | None:
    scopes: dict[str, str] = getattr(view, "required_scopes", None) or {}
    method = method.upper()
    if method in ("HEAD", "OPTIONS"):
        method = "GET"
    return scopes.get(method)


# What a staff member's admin permissions must include for their session to have a scope in the browsable API:
# the API does nothing their roles do not let them do in the admin. A superuser has them all.
SCOPE_PERMISSIONS = {
    "catalog:read": "catalog.view_product",
    "catalog:write": "catalog.change_product",
    "inventory:write": "catalog.change_stockitem",
    "orders:read": "orders.view_order",
    "orders:write": "orders.change_order",
    "customers:read": "accounts.view_user",
    "webhooks": "webhooks.change_endpoint",
}


def granted_scopes(request) -> frozenset[str] | None:
    """The scopes of the caller; None when nobody is signed in. A staff session: the scopes its permissions give."""
    if isinstance(request.auth, ApiKeyInfo):
        return request.auth.scopes
    user = request.user
    if user is None or not user.is_authenticated:
        return None
    if user.is_staff and user.is_active:
        return frozenset(scope for scope in API_SCOPES if user.has_perm(SCOPE_PERMISSIONS[scope]))
    return frozenset()


class ScopePermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        granted = granted_scopes(request)
        if granted is None:
            raise exceptions.NotAuthenticated("Send an API key: Authorization: Bearer <key>.")
        needed = required_scope(view, request.method)
        if needed is None:
            if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
                raise exceptions.MethodNotAllowed(request.method)
            raise exceptions.PermissionDenied("This operation is not open to API keys.")  # no scope declared
        if not scope_granted(granted, needed):
            if isinstance(request.auth, ApiKeyInfo):
                raise exceptions.PermissionDenied(f"This key lacks the scope {needed}.", code="missing_scope")
            if request.user.is_staff:
                raise exceptions.PermissionDenied(
                    f"Your admin permissions do not include {SCOPE_PERMISSIONS[needed]}, which {needed} needs.",
                    code="missing_scope",
                )
            raise exceptions.PermissionDenied("The API is for integrators and staff: use an API key.")
        return True


# ---------------------------------------------------------------- lists


class CursorPagination(DrfCursorPagination):
    """Cursor pagination: the same cost on page 1 and page 10,000, and stable while rows are added."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:  # DRF says 404; a malformed parameter is the client's 400
            raise exceptions.ValidationError({self.cursor_query_param: ["Not a cursor this API gave out."]}) from exc

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = f"Results per page, 1 to {self.max_page_size} (default {self.page_size})."
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "The cursor of the page: follow the `next` and `previous` links."
        return parameters


# ---------------------------------------------------------------- throttling


_BUCKET_SCRIPT = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't'))
local stamp = tonumber(redis.call('HGET', KEYS[1], 's'))
local rate, burst, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tokens == nil then tokens = burst; stamp = now end
tokens = math.min(burst, tokens + (now - stamp) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - cost; allowed = 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""


class TokenBucket:
    """Per-key token buckets: `burst` tokens, refilled at `rate` a second. In Redis (one Lua script, atomic across
    processes) when REDIS_URL is set, else in this process (development: one server process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[str, tuple[float, float]] = {}
        self._redis_script: Any = None

    def _script(self):
        if self._redis_script is None:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._redis_script = client.register_script(_BUCKET_SCRIPT)
        return self._redis_script

    def take(
        self, bucket: str, *, rate: float, burst: int, now: float | None = None, peek: bool = False
    ) -> tuple[bool, float]:
        """Take one token (peek: only look whether there is one). Returns (allowed, seconds until a token is there
        when it is not)."""
        now = time.time() if now is None else now
        cost = 0 if peek else 1
        if settings.REDIS_URL:
            try:
                allowed, left = self._script()(keys=[f"throttle:{bucket}"], args=[rate, burst, now, cost])
                tokens = float(left)
                return bool(allowed), 0.0 if allowed else (1 - tokens) / rate
            except Exception:  # Redis down: this process's buckets, rather than failing requests
                logger.warning("throttle: Redis unreachable, using this process's token buckets", exc_info=True)
        with self._lock:
            tokens, stamp = self._local.get(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + (now - stamp) * rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= cost
            self._local[bucket] = (tokens, now)
        return allowed, 0.0 if allowed else (1 - tokens) / rate


BUCKETS = TokenBucket()


class TokenBucketThrottle(BaseThrottle):
    """API_THROTTLE_BURST requests at once, API_THROTTLE_RATE a second sustained, per API key or staff user."""

    def allow_request(self, request, view) -> bool:
        if isinstance(request.auth, ApiKeyInfo):
            bucket = f"key:{request.auth.prefix}"
        elif request.user is not None and request.user.is_authenticated:
            bucket = f"user:{request.user.pk}"
        else:
            bucket = f"ip:{self.get_ident(request)}"
        allowed, self._wait = BUCKETS.take(bucket, rate=settings.API_THROTTLE_RATE, burst=settings.API_THROTTLE_BURST)
        return allowed

    def wait(self) -> float:
        return max(1.0, math.ceil(self._wait))


# ---------------------------------------------------------------- Idempotency-Key and ETag


def _principal(request: HttpRequest) -> str | None:
    token = bearer_token(request)
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:40]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


REPLAYED_HEADERS = ("Location", "ETag", "Content-Language")
NOT_KEPT = {401, 403, 429}


def _still_valid(request: HttpRequest) -> bool:
    """A replay goes only to a key that is still good (revoking a key ends its replays too)."""
    token = bearer_token(request)
    if token is None:
        return True  # a staff session: the session middleware has already checked it
    try:
        api_key_authenticate(token=token)
    except ApiKeyInvalid:
        return False
    return True


class IdempotencyMiddleware:
    """A POST under /api/ with an Idempotency-Key header runs once per key (and principal) for 24 hours: sent
    again, it gets the first answer (with Idempotent-Replayed: true); the same key with another body gets 422;
    a second send while the first still runs gets 409."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self.get_response(request)
        key = key.strip()
        if not key or len(key) > 255 or not key.isprintable():
            return json_error(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters.")
        principal = _principal(request)
        if principal is None:
            return self.get_response(request)  # answered 401 by the view; nothing to remember
        fingerprint = hashlib.sha256(b"\n".join([request.get_full_path().encode(), request.body])).hexdigest()
        try:
            outcome = idempotency_begin(principal=principal, key=key, fingerprint=fingerprint)
        except KeyReused:
            return json_error(422, "idempotency_key_reused", "This Idempotency-Key was used with a different request.")
        except RequestInProgress:
            response = json_error(
                409, "request_in_progress", "A request with this Idempotency-Key is still running; try again."
            )
            response["Retry-After"] = "1"
            return response
        if outcome.replay is not None and not _still_valid(request):
            return self.get_response(request)  # a revoked or expired key: the view answers 401, nothing is replayed
        if outcome.replay is not None:
            replay = outcome.replay
            response = HttpResponse(replay.body, status=replay.status_code, content_type=replay.content_type)
            for name, value in replay.headers.items():
                response[name] = value
            response["Idempotent-Replayed"] = "true"
            return response
        assert outcome.record_id is not None
        try:
            response = self.get_response(request)
        except BaseException:
            idempotency_release(record_id=outcome.record_id)
            raise
        if response.status_code in NOT_KEPT or response.status_code >= 500 or response.streaming:
            idempotency_release(record_id=outcome.record_id)
            return response
        headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
        idempotency_finish(
            record_id=outcome.record_id,
            status_code=response.status_code,
            body=response.content,
            content_type=response.get("Content-Type", "application/json"),
            headers=headers,
        )
        return response


class ApiConditionalGetMiddleware(ConditionalGetMiddleware):
    """ETag on every API read (a hash of the body) and 304 Not Modified for If-None-Match: an integrator polling a
    detail saves the transfer. Only under /api/: the shop's pages have their own caching."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return response
        patch_vary_headers(response, ["Authorization"])  # what a key may see differs: no cache may share it
        return super().process_response(request, response)
