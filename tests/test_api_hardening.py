"""What an integrator (or someone guessing keys) can send that must never be a 500 or a way around the rules."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from accounts.services import address_save, api_key_revoke
from tests.api import client_with, error_code, key_client, key_client_and_key, make_key
from tests.factories import UserFactory, make_category, make_product
from webhooks.delivery import private_address

pytestmark = pytest.mark.django_db


@pytest.fixture
def kettle():
    return make_product("Copper Kettle", make_category("Kitchen"), variants=[{"price": "30.00", "stock": 5}])


@pytest.mark.parametrize(
    "body",
    [
        '{"title": "\\ud800"}',  # a lone surrogate: parses, cannot be stored
        '{"attributes": {"\\u0000colour": "red"}}',  # a NUL in a key: PostgreSQL's jsonb refuses it
        '{"attributes": {"colour": "\\udfff"}}',
    ],
)
def test_json_that_parses_but_could_not_be_stored_is_refused_with_400(kettle, body):
    response = key_client("catalog:write").generic(
        "PATCH", f"/api/v1/products/{kettle.pk}/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert error_code(response) == "parse_error"


def test_a_nul_in_a_string_value_is_refused_by_its_field():
    response = key_client("customers:read").get("/api/v1/customers/", {"email": "a\x00@example.com"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/variants/KTS%0042/",
        "/api/v1/stock/A%00/",
        "/api/v1/orders/NW-%00/",
        "/api/v1/variants/" + "x" * 65 + "/",
    ],
)
def test_codes_in_paths_with_nul_or_too_long_name_nothing(path):
    response = key_client("catalog:read", "orders:read").get(path)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("page_size", ["²", "٣٣", "-1", "101", "1e2"])
def test_page_sizes_that_are_not_plain_numbers_from_1_to_100_get_400(page_size):
    response = key_client("customers:read").get("/api/v1/customers/", {"page_size": page_size})
    assert response.status_code == 400
    assert "page_size" in response.json()["error"]["fields"]


def test_a_huge_category_id_in_a_filter_is_no_500():
    response = key_client("catalog:read").get("/api/v1/products/", {"category": "9" * 40})
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_revoked_key_gets_no_replay_of_its_earlier_answers(kettle):
    client, info = key_client_and_key("catalog:write")
    body = {"title": "Kettle Mk II", "slug": "kettle-mk-ii", "category": kettle.category_id, "variants": []}
    first = client.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="new-kettle")
    assert first.status_code == 201, first.content
    api_key_revoke(key_id=info.id)
    again = client.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="new-kettle")
    assert again.status_code == 401
    assert "Idempotent-Replayed" not in again


def test_guessing_keys_is_throttled_per_address(settings):
    settings.API_THROTTLE_BURST = 30  # an address may try 3 wrong keys at once, then one each 10 s
    settings.API_THROTTLE_RATE = 1.0
    guesser = client_with("shk_0000000000_guess")
    codes = [guesser.get("/api/v1/customers/").status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]
    assert int(guesser.get("/api/v1/customers/")["Retry-After"]) >= 1
    _, token = make_key("customers:read")
    elsewhere = client_with(token).get("/api/v1/customers/", REMOTE_ADDR="203.0.113.7")
    assert elsewhere.status_code == 200, "a good key from another address is not held up"


def test_a_customers_address_book_change_moves_their_updated_at():
    person = UserFactory()
    before = type(person).objects.get(pk=person.pk).updated_at
    address_save(user_id=person.pk, full_name="Ada", line1="1 Way", postal_code="1", city="Town", country="DE")
    after = type(person).objects.get(pk=person.pk).updated_at
    assert after > before
    listed = key_client("customers:read").get("/api/v1/customers/", {"updated_since": after.isoformat()})
    assert [c["id"] for c in listed.json()["results"]] == [person.pk]


def test_webhook_urls_that_resolve_to_this_machine_or_a_private_network_are_not_sent_to():
    assert "not a public address" in private_address("http://localhost:9/hooks")
    assert "not a public address" in private_address("http://127.0.0.1/hooks")
    assert "not a public address" in private_address("http://[::1]/hooks")
    assert "not a public address" in private_address("http://169.254.169.254/latest/meta-data/")


def test_the_list_cache_down_means_the_list_is_computed_not_a_500(kettle, settings, monkeypatch):
    settings.API_LIST_CACHE_SECONDS = 60

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    backend = type(caches["default"])
    monkeypatch.setattr(backend, "get", down)
    monkeypatch.setattr(backend, "set", down)
    response = key_client("catalog:read").get("/api/v1/products/", {"page_size": 10})
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [kettle.pk]
