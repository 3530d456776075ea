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
from schemathesis.core.parameters import ParameterLocation
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


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """Schemathesis calls the WSGI app directly, and Django closes a connection that is not in autocommit at the
    start and end of each request; a test's connection never is. Django's test client disconnects the same."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Real values of path parameters, by (first path segment after /api/v1/, parameter name); filled by `seeded`.
REAL: dict[tuple[str, str], list] = {}


@pytest.fixture
def seeded(db, monkeypatch, django_capture_on_commit_callbacks):
    """Customers, categories, products with stock, orders at every stage (one parcel, one return) and a webhook
    endpoint, for the operations to find; the examples add their own."""
    from catalog.models import Category, Product, Variant
    from tests.factories import make_category, make_product
    from tests.test_api_orders import STAGES, order_at
    from tests.test_orders import pay

    REAL.clear()
    REAL["customers", "id"] = [UserFactory().pk for _ in range(3)]
    kitchen = make_category("Kitchen")
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 500}]).variants.get()
    mug = make_product("Stone Mug", kitchen, variants=[{"price": "8.00", "stock": 500}]).variants.get()
    import tests.test_api_orders as orders_tests

    def pay_and_deliver_events(order, *args):  # the payment's events run as they would after its commit
        with django_capture_on_commit_callbacks(execute=True):
            pay(order, *args)

    monkeypatch.setattr(orders_tests, "pay", pay_and_deliver_events)
    numbers = [order_at((kettle, mug), stage, key=f"st-{stage}") for stage in STAGES]
    REAL["orders", "number"] = numbers
    REAL["orders", "shipment_number"] = [1]
    REAL["orders", "return_number"] = [1]
    REAL["categories", "id"] = list(Category.objects.values_list("pk", flat=True))
    REAL["products", "id"] = list(Product.objects.values_list("pk", flat=True))
    skus = list(Variant.objects.values_list("sku", flat=True))
    REAL["variants", "sku"] = REAL["stock", "sku"] = skus
    seed_webhooks(REAL)
    yield REAL
    REAL.clear()


def seed_webhooks(real: dict[tuple[str, str], list]) -> None:
    """Two webhook endpoints (one disabled) on a port nothing listens on, so their tries fail at once, each with
    a message that was tried."""
    from webhooks import services as webhooks

    for description in ("live", "disabled"):
        endpoint = webhooks.endpoint_create(url="http://127.0.0.1:9/hooks", description=description).endpoint
        message = webhooks.endpoint_ping(endpoint_id=endpoint.id)
        real.setdefault(("webhooks", "id"), []).append(endpoint.id)
        real.setdefault(("webhooks", "message_id"), []).append(message.id)
    webhooks.endpoint_disable(endpoint_id=endpoint.id, reason="seeded disabled")


# Loaded from the app at collection (the schema view touches no database). The key goes in every request's
# headers; requests without it, or with a wrong one, are tests/test_api.py's (every operation, 401).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
schema.config.generation.update(with_security_parameters=False)


def use_real_objects(case) -> None:
    """Half the time, a positive case's path parameters become ids of real objects (a negative one keeps its
    invalid values: replacing them would turn it into a valid request that is rightly accepted)."""
    if not case.path_parameters or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    rng = random.Random(repr(sorted(case.path_parameters.items())))
    resource = case.operation.path.removeprefix("/api/v1/").split("/")[0]
    for name in list(case.path_parameters):
        candidates = REAL.get((resource, name))
        if candidates and rng.random() < 0.5:
            case.path_parameters[name] = rng.choice(candidates)


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
    use_real_objects(case)
    response = case.call_and_validate(headers=headers_for(*API_SCOPES), checks=CHECKS)
    assert response.status_code < 500


@pytest.fixture(params=API_SCOPES)
def one_scope(request) -> dict[str, str]:
    return headers_for(request.param)


@schema.parametrize()
@hypothesis_settings(ONE_SCOPE_EXAMPLES)
def test_every_operation_keeps_to_its_schema_with_one_scope(case, seeded, one_scope):
    """A key of one scope: the operations it covers work, the others answer 403 as documented."""
    use_real_objects(case)
    response = case.call_and_validate(headers=one_scope, checks=CHECKS)
    assert response.status_code < 500
