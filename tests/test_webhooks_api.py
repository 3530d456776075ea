"""Webhook subscriptions over the REST API (scope "webhooks"), against a real receiver (tests/test_webhooks.py)."""

from __future__ import annotations

import pytest

from tests.api import client_with, error_code, key_client, other_scopes, revoked_client
from tests.test_webhooks import receiver  # noqa: F401 (a fixture)
from webhooks import services
from webhooks.models import Endpoint, Message

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
BASE = "/api/v1/webhooks/endpoints/"
OPERATIONS = [
    ("get", BASE),
    ("post", BASE),
    ("get", f"{BASE}1/"),
    ("patch", f"{BASE}1/"),
    ("delete", f"{BASE}1/"),
    ("post", f"{BASE}1/rotate-secret/"),
    ("post", f"{BASE}1/enable/"),
    ("post", f"{BASE}1/ping/"),
    ("get", f"{BASE}1/messages/"),
    ("get", f"{BASE}1/messages/1/attempts/"),
    ("post", f"{BASE}1/messages/1/replay/"),
]


@pytest.fixture
def api():
    """A key that may subscribe to every event type: their payloads carry orders and products."""
    return key_client("webhooks", "orders:read", "catalog:read")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def call(client, method: str, path: str, body: dict | None = None):
    return getattr(client, method)(path, body if body is not None else ({} if method != "get" else None), format="json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_a_key_without_the_webhooks_scope_gets_403_and_a_revoked_key_401(method, path, client):
    response = call(key_client(*other_scopes("webhooks")), method, path)
    assert response.status_code == 403
    assert error_code(response) == "missing_scope"
    assert "webhooks" in response.json()["error"]["message"]
    response = call(revoked_client("webhooks"), method, path)
    assert response.status_code == 401
    assert error_code(response) == "authentication_failed"
    assert call(client_with(None), method, path).status_code == 401


def test_an_endpoint_is_created_with_its_secret_shown_once_then_listed_changed_and_deleted(api, receiver):  # noqa: F811
    response = api.post(BASE, {"url": receiver.url, "description": "ERP", "event_types": ["order.paid"]},
                        format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert (created["url"], created["description"], created["event_types"], created["is_active"]) == (
        receiver.url, "ERP", ["order.paid"], True
    )  # fmt: skip
    pk = created["id"]

    listed = api.get(BASE).json()
    assert [e["id"] for e in listed["results"]] == [pk]
    assert "secret" not in listed["results"][0]
    detail = api.get(f"{BASE}{pk}/")
    assert detail.status_code == 200
    assert created["secret"] not in detail.content.decode()

    changed = api.patch(f"{BASE}{pk}/", {"event_types": [], "description": "Books"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["event_types"], changed.json()["description"], changed.json()["url"]) == (
        [], "Books", receiver.url
    )  # fmt: skip
    assert api.delete(f"{BASE}{pk}/").status_code == 204
    assert api.get(f"{BASE}{pk}/").status_code == 404
    assert api.delete(f"{BASE}{pk}/").status_code == 404


def test_read_only_fields_sent_by_a_client_change_nothing(api, receiver):  # noqa: F811
    Endpoint.objects.create(url="https://example.com/taken")  # so an id of 1 would be someone else's
    sent = {"url": receiver.url, "id": 1, "is_active": False, "secret": "whsec_mine", "disabled_reason": "x",
            "created_at": "2000-01-01T00:00:00Z"}  # fmt: skip
    response = api.post(BASE, sent, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != 1
    assert body["is_active"] is True
    assert body["secret"] != "whsec_mine"
    assert body["disabled_reason"] == ""
    assert not body["created_at"].startswith("2000")
    patched = api.patch(f"{BASE}{body['id']}/", {"is_active": False, "failing_since": "2000-01-01T00:00:00Z"},
                        format="json")  # fmt: skip
    assert patched.status_code == 200
    assert patched.json()["is_active"] is True
    assert patched.json()["failing_since"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": 12345}, "url"),
        ({}, "url"),
        ({"url": "http://127.0.0.1:9/x", "description": 7}, "description"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["order.exploded"]}, "event_types"),
        ({"url": "http://127.0.0.1:9/x", "event_types": "order.paid"}, "event_types"),
    ],
)
def test_bad_input_gets_400_naming_the_field(api, settings, body, field):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOKS_REQUIRE_HTTPS = False
    response = api.post(BASE, body, format="json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert not Endpoint.objects.exists()


def test_a_private_address_is_refused_in_production(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    settings.WEBHOOKS_REQUIRE_HTTPS = True
    response = api.post(BASE, {"url": "https://192.168.1.10/hook"}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]


def test_ping_rotate_messages_attempts_replay_and_enable(api, receiver, committed):  # noqa: F811
    created = api.post(BASE, {"url": receiver.url}, format="json").json()
    pk = created["id"]
    receiver.secrets.append(created["secret"])
    receiver.script = [{"status": 500}]
    with committed():
        pinged = api.post(f"{BASE}{pk}/ping/", format="json")
    assert pinged.status_code == 202
    message_id = pinged.json()["id"]
    assert pinged.json()["event_type"] == "webhook.test"
    assert pinged.json()["webhook_id"] == receiver.requests[0].webhook_id

    rotated = api.post(f"{BASE}{pk}/rotate-secret/", {"grace_seconds": 3600}, format="json")
    assert rotated.status_code == 200
    receiver.secrets.append(rotated.json()["secret"])
    with committed():
        replayed = api.post(f"{BASE}{pk}/messages/{message_id}/replay/", format="json")
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "pending", "sent once the request has committed"
    assert services.message_get(message_id=message_id).status == "delivered"
    assert receiver.requests[-1].verified == [True, True], "both secrets sign during the rotation"
    assert receiver.ids() == [pinged.json()["webhook_id"]] * 2

    messages = api.get(f"{BASE}{pk}/messages/").json()["results"]
    assert [(m["id"], m["status"], m["attempts"]) for m in messages] == [(message_id, "delivered", 2)]
    assert messages[0]["payload"]["type"] == "webhook.test"
    assert api.get(f"{BASE}{pk}/messages/", {"status": "failed"}).json()["results"] == []
    attempts = api.get(f"{BASE}{pk}/messages/{message_id}/attempts/").json()["results"]
    assert [(a["number"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "failed", 500), (2, "succeeded", 200)
    ]  # fmt: skip

    services.endpoint_disable(endpoint_id=pk, reason="testing")
    refused = api.post(f"{BASE}{pk}/ping/", format="json")
    assert refused.status_code == 409
    assert error_code(refused) == "conflict"
    enabled = api.post(f"{BASE}{pk}/enable/", format="json")
    assert enabled.status_code == 200
    assert enabled.json()["is_active"] is True


def test_an_endpoints_messages_page_by_cursor_and_another_endpoints_message_is_not_found(api, receiver, committed):  # noqa: F811
    first = api.post(BASE, {"url": receiver.url}, format="json").json()["id"]
    second = api.post(BASE, {"url": receiver.url}, format="json").json()["id"]
    with committed():
        for _ in range(3):
            services.endpoint_ping(endpoint_id=first)
        other = services.endpoint_ping(endpoint_id=second)
    page = api.get(f"{BASE}{first}/messages/", {"page_size": 2}).json()
    assert len(page["results"]) == 2
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1
    ids = [m["id"] for m in page["results"] + rest["results"]]
    assert ids == sorted(Message.objects.filter(endpoint_id=first).values_list("id", flat=True), reverse=True)
    assert api.get(f"{BASE}{first}/messages/{other.id}/attempts/").status_code == 404
    assert api.post(f"{BASE}{first}/messages/{other.id}/replay/", format="json").status_code == 404
    assert api.get(f"{BASE}999999/messages/").status_code == 404


def test_the_schema_documents_the_webhook_operations(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    ops = {(m, p) for p, item in schema["paths"].items() for m in item if p.startswith("/api/v1/webhooks/")}
    assert len(ops) == len(OPERATIONS)
    create = schema["paths"]["/api/v1/webhooks/endpoints/"]["post"]
    assert "201" in create["responses"]
    created = schema["components"]["schemas"]["EndpointCreatedOutput"]["properties"]
    assert "secret" in created
    request = schema["components"]["schemas"]["EndpointCreateInputRequest"]["properties"]
    assert set(request) == {"url", "description", "event_types"}, "only writable fields in the input"
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/webhooks/"):
            for operation in item.values():
                if isinstance(operation, dict) and "x-required-scope" in operation:
                    assert operation["x-required-scope"] == "webhooks"
                    assert operation["tags"] == ["webhooks"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS[2:], ids=[f"{m} {p}" for m, p in OPERATIONS[2:]])
def test_an_id_too_large_for_the_database_is_404_not_500(api, method, path):
    huge = str(2**80)
    response = call(api, method, path.replace("/1/", f"/{huge}/"))
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# ---------------------------------------------------------------- whose endpoints, and what they may receive


def test_a_key_sees_and_changes_only_the_endpoints_it_made(api, receiver):  # noqa: F811
    mine = api.post(BASE, {"url": receiver.url, "event_types": ["order.paid"]}, format="json").json()
    other = key_client("webhooks", "orders:read")
    theirs = other.post(BASE, {"url": receiver.url, "event_types": ["order.paid"]}, format="json").json()
    staff_made = services.endpoint_create(url=receiver.url, event_types=["order.paid"]).endpoint

    assert [e["id"] for e in api.get(BASE).json()["results"]] == [mine["id"]]
    for endpoint_id in (theirs["id"], staff_made.id):
        for method, path in [
            ("get", f"{BASE}{endpoint_id}/"),
            ("patch", f"{BASE}{endpoint_id}/"),
            ("delete", f"{BASE}{endpoint_id}/"),
            ("post", f"{BASE}{endpoint_id}/rotate-secret/"),
            ("post", f"{BASE}{endpoint_id}/ping/"),
            ("get", f"{BASE}{endpoint_id}/messages/"),
        ]:
            assert call(api, method, path, {"url": "https://evil.example.com/"} if method == "patch" else None
                        ).status_code == 404, (method, path)  # fmt: skip
    assert services.endpoint_get(endpoint_id=theirs["id"]).url == receiver.url, "unchanged"


def test_subscribing_needs_the_read_scope_of_what_the_payloads_carry(receiver):  # noqa: F811
    only_webhooks = key_client("webhooks")
    for types in (["order.paid"], ["return.received"]):
        response = only_webhooks.post(BASE, {"url": receiver.url, "event_types": types}, format="json")
        assert response.status_code == 403, types
        assert "orders:read" in response.json()["error"]["message"]
    every_type = key_client("webhooks", "orders:read").post(BASE, {"url": receiver.url}, format="json")
    assert every_type.status_code == 403, "no event types: all of them, products too"
    assert "catalog:read" in every_type.json()["error"]["message"]
    response = only_webhooks.post(BASE, {"url": receiver.url, "event_types": ["stock.low"]}, format="json")
    assert response.status_code == 403
    assert "catalog:read" in response.json()["error"]["message"]
    catalog_only = key_client("webhooks", "catalog:read")
    made = catalog_only.post(BASE, {"url": receiver.url, "event_types": ["product.updated"]}, format="json")
    assert made.status_code == 201
    widened = catalog_only.patch(f"{BASE}{made.json()['id']}/", {"event_types": ["order.paid"]}, format="json")
    assert widened.status_code == 403
