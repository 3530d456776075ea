"""Schemathesis against the live schema (/api/v1/schema/, served by the app itself), every operation, with a key of
each scope and one with all of them: no 5xx, responses (status, headers, body) as the schema says, and data the
schema forbids refused with a 4xx.

Path parameters are replaced, half the time, by ids of real objects, so the reads and the actions reach real
products, orders and webhook endpoints instead of only answering 404. Examples per operation:
SCHEMATHESIS_EXAMPLES (default 25 with every scope, 6 with one).
"""

from __future__ import annotations

import os
import random

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import API_SCOPES
from config.wsgi import application
from tests.api import make_key
from tests.factories import UserFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
ONE_SCOPE_EXAMPLES = max(1, EXAMPLES // 4)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

pytestmark = pytest.mark.django_db


def real_objects() -> dict[str, list]:
    """Ids of real objects by path parameter name (filled by the seed fixture)."""
    return REAL


REAL: dict[str, list] = {}


@pytest.fixture
def seeded(db):
    REAL.clear()
    people = [UserFactory() for _ in range(3)]
    REAL["id"] = [p.pk for p in people]
    seed_catalog_and_orders(REAL)
    yield REAL
    REAL.clear()


def seed_catalog_and_orders(real: dict[str, list]) -> None:
    """Products, stock, orders and webhook endpoints for the operations to find (kept small: the examples add
    their own)."""
    seed_webhooks(real)


def seed_webhooks(real: dict[str, list]) -> None:
    """Two webhook endpoints (one disabled) on a port nothing listens on, so their tries fail at once, each with
    a message that was tried. Their ids join the path parameter `id`, their messages' `message_id`."""
    from webhooks import services as webhooks

    for description in ("live", "disabled"):
        endpoint = webhooks.endpoint_create(url="http://127.0.0.1:9/hooks", description=description).endpoint
        message = webhooks.endpoint_ping(endpoint_id=endpoint.id)
        real.setdefault("id", []).append(endpoint.id)
        real.setdefault("message_id", []).append(message.id)
    webhooks.endpoint_disable(endpoint_id=endpoint.id, reason="seeded disabled")


# Loaded from the app at collection (the schema view touches no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if not path_parameters:
        return path_parameters
    rng = random.Random(repr(sorted(path_parameters.items())))
    for name in list(path_parameters):
        candidates = real_objects().get(name)
        if candidates and rng.random() < 0.5:
            path_parameters[name] = rng.choice(candidates)
    return path_parameters


def headers_for(*scopes: str) -> dict[str, str]:
    _, token = make_key(*scopes, name="schemathesis")
    return {"Authorization": f"Bearer {token}"}


def hypothesis_settings(examples: int):
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
    )


@schema.parametrize()
@hypothesis_settings(EXAMPLES)
def test_every_operation_keeps_to_its_schema_with_every_scope(case, seeded):
    response = case.call_and_validate(headers=headers_for(*API_SCOPES), checks=CHECKS)
    assert response.status_code < 500


@pytest.fixture(params=API_SCOPES)
def one_scope(request) -> dict[str, str]:
    return headers_for(request.param)


@schema.parametrize()
@hypothesis_settings(ONE_SCOPE_EXAMPLES)
def test_every_operation_keeps_to_its_schema_with_one_scope(case, seeded, one_scope):
    """A key of one scope: the operations it covers work, the others answer 403 as documented."""
    response = case.call_and_validate(headers=one_scope, checks=CHECKS)
    assert response.status_code < 500
