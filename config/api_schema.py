"""The OpenAPI schema's shared parts (drf-spectacular): the API key scheme, the error answers, the scope each
operation needs and the Idempotency-Key header. Apart from config.api, which DRF's settings import while
drf_spectacular.openapi is itself importing them."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from config.api import required_scope


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made by staff in the admin (Accounts > API keys): shk_<prefix>_<secret>.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERRORS = {
    "400": "The request is malformed or has invalid fields.",
    "401": "No API key, or a wrong, revoked or expired one.",
    "403": "The key lacks the scope this operation needs (the message names it).",
    "404": "No such object, or not one this key may see.",
    "405": "The method is not allowed here.",
    "409": "The object is not in a state that allows this, or the same Idempotency-Key is still running.",
    "422": "The Idempotency-Key was used with a different request.",
    "429": "Too many requests for this key: wait for Retry-After seconds.",
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again to get the first answer instead of doing it twice (kept 24 hours).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


class ShopAutoSchema(AutoSchema):
    """drf-spectacular's schema plus what every operation shares: the scope it needs (in its description and
    x-required-scope), the error answers, and the Idempotency-Key header on POST."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        scope = required_scope(self.view, method)
        if scope:
            operation["x-required-scope"] = scope
            note = f"Needs the scope `{scope}`."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
        responses = operation.setdefault("responses", {})
        codes = ["400", "401", "403", "405", "429"]
        if "{" in path:
            codes.append("404")
        if method == "POST":
            codes += ["409", "422"]
            operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        elif method in ("PUT", "PATCH", "DELETE"):
            codes.append("409")
        for code in codes:
            responses.setdefault(
                code, {"description": ERRORS[code], "content": {"application/json": {"schema": ERROR_REF}}}
            )
        return operation


def add_error_component(result, generator, request, public):
    """SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS: the Error schema every error answer refers to."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    return result
