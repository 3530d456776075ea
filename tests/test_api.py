"""The REST API's shared behaviour: keys and scopes, errors, pagination, throttling, idempotency, ETags, the schema
and its docs, and the customers endpoints."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Address
from accounts.services import ApiKeyInvalid, api_key_authenticate, api_key_create, api_key_revoke
from kernel.idempotency import IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, idempotency_purge
from kernel.models import IdempotentRequest
from tests.api import client_with, error_code, key_client, key_client_and_key, make_key, revoked_client
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def customer(**fields):
    return UserFactory(**fields)


# ---------------------------------------------------------------- keys


def test_a_key_is_shown_once_and_kept_only_as_a_hash():
    info, token = api_key_create(name="ERP", scopes=["orders:read"])
    assert token.startswith(f"shk_{info.prefix}_")
    from accounts.models import ApiKey

    row = ApiKey.objects.get(pk=info.id)
    assert token not in json.dumps([row.key_hash, row.prefix, row.name])
    assert api_key_authenticate(token=token).id == info.id


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer shk_nope_nope", "authentication_failed"),
        ("Bearer garbage", "authentication_failed"),
        ("Basic dXNlcjpwYXNz", "authentication_failed"),
    ],
)
def test_no_key_or_a_wrong_key_gets_401_with_the_error_body(client, header, code):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/customers/", **headers)
    assert response.status_code == 401
    assert error_code(response) == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_gets_401_at_once():
    client, info = key_client_and_key("customers:read")
    assert client.get("/api/v1/customers/").status_code == 200
    api_key_revoke(key_id=info.id)
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_an_expired_key_gets_401():
    _, token = make_key("customers:read", expires_at=timezone.now() - timedelta(seconds=1))
    response = client_with(token).get("/api/v1/customers/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_key_without_the_scope_gets_403_naming_it():
    response = key_client("orders:read", "catalog:write").get("/api/v1/customers/")
    assert response.status_code == 403
    body = response.json()["error"]
    assert body["code"] == "missing_scope"
    assert "customers:read" in body["message"]


def test_last_used_is_recorded_at_most_once_a_minute():
    _info, token = make_key("customers:read")
    client = client_with(token)
    client.get("/api/v1/customers/")
    first = api_key_authenticate(token=token).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/customers/")
    assert not [q for q in queries if q["sql"].startswith("UPDATE") and "apikey" in q["sql"]]


def test_unknown_scopes_are_refused():
    with pytest.raises(ValueError, match="Unknown scope"):
        api_key_create(name="x", scopes=["orders:everything"])


def test_a_staff_session_has_the_scopes_its_admin_permissions_give_and_a_customer_session_none(client):
    from django.contrib.auth.models import Permission

    clerk = StaffFactory()  # staff, but no permission to see customers
    client.force_login(clerk)
    refused = client.get("/api/v1/customers/")
    assert refused.status_code == 403
    assert "accounts.view_user" in refused.json()["error"]["message"]
    clerk.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(type(clerk).objects.get(pk=clerk.pk))
    response = client.get("/api/v1/customers/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Customer List" in response.content
    assert client.get("/api/v1/orders/").status_code == 403, "no orders.view_order"
    client.force_login(StaffFactory(is_superuser=True))
    assert client.get("/api/v1/orders/").status_code == 200
    client.force_login(customer())
    assert client.get("/api/v1/customers/").status_code == 403


def test_staff_creates_a_key_in_the_admin_sees_it_once_and_revokes_it(client):
    client.force_login(StaffFactory(is_superuser=True))
    response = client.post(
        "/admin/accounts/apikey/add/",
        {"name": "Warehouse", "scopes": ["orders:read", "orders:write"], "expires_at": ""},
        follow=True,
    )
    assert response.status_code == 200
    token = re.search(rb"<code>(shk_[A-Za-z0-9_-]+)</code>", response.content).group(1).decode()
    assert client_with(token).get("/api/v1/customers/").status_code == 403  # no customers:read
    from accounts.models import ApiKey

    key = ApiKey.objects.get(name="Warehouse")
    page = client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert token.encode() not in page.content
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    with pytest.raises(ApiKeyInvalid):
        api_key_authenticate(token=token)


# ---------------------------------------------------------------- lists, errors, ETags


def test_customers_list_pages_by_cursor_and_filters_by_email_and_updated_since():
    people = [customer(email=f"p{i}@example.com") for i in range(5)]
    StaffFactory(email="staff@example.com")
    client = key_client("customers:read")
    response = client.get("/api/v1/customers/", {"page_size": 2})
    body = response.json()
    assert len(body["results"]) == 2
    seen = [c["email"] for c in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [c["email"] for c in body["results"]]
    assert sorted(seen) == sorted(p.email for p in people)  # staff are not customers
    assert [c["email"] for c in client.get("/api/v1/customers/", {"email": "P3@example.com"}).json()["results"]] == [
        "p3@example.com"
    ]
    later = timezone.now()
    people[1].full_name = "Renamed"
    people[1].save()
    results = client.get("/api/v1/customers/", {"updated_since": later.isoformat()}).json()["results"]
    assert [c["email"] for c in results] == ["p1@example.com"]


def test_bad_filter_values_get_400_with_the_field_named():
    response = key_client("customers:read").get("/api/v1/customers/", {"updated_since": "yesterday"})
    assert response.status_code == 400
    assert "updated_since" in response.json()["error"]["fields"]


def test_an_unknown_api_path_and_an_unknown_object_get_json_404():
    client = key_client("customers:read")
    for path in ("/api/v1/nothing-here/", "/api/v1/customers/999999/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_method_that_is_not_there_gets_405():
    response = key_client("customers:read").delete("/api/v1/customers/")
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_customers_list_costs_the_same_queries_for_3_and_30_customers():
    client = key_client("customers:read")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/customers/", {"page_size": 100}).status_code == 200
        return len(ctx)

    for _ in range(3):
        Address.objects.create(user=customer(), full_name="A", line1="x", postal_code="1", city="c", country="DE")
    count()  # the key's first use writes its "last used"
    few = count()
    for _ in range(27):
        Address.objects.create(user=customer(), full_name="A", line1="x", postal_code="1", city="c", country="DE")
    assert count() == few


def test_detail_reads_carry_an_etag_and_answer_304_when_unchanged():
    person = customer()
    client = key_client("customers:read")
    response = client.get(f"/api/v1/customers/{person.pk}/")
    etag = response["ETag"]
    assert client.get(f"/api/v1/customers/{person.pk}/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    person.full_name = "Someone Else"
    person.save()
    again = client.get(f"/api/v1/customers/{person.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    assert again.json()["full_name"] == "Someone Else"


# ---------------------------------------------------------------- throttling


def test_a_key_that_empties_its_bucket_gets_429_with_retry_after(settings):
    settings.API_THROTTLE_BURST = 3
    settings.API_THROTTLE_RATE = 0.5
    client = key_client("customers:read")
    other = key_client("customers:read")
    codes = [client.get("/api/v1/customers/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/customers/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert error_code(response) == "throttled"
    assert other.get("/api/v1/customers/").status_code == 200  # per key


# ---------------------------------------------------------------- Idempotency-Key


@pytest.fixture
def echo_endpoint(settings):
    """A POST endpoint of the API that counts its runs (the real ones are in each module's tests)."""
    from django.urls import clear_url_caches, path
    from rest_framework import serializers
    from rest_framework.response import Response
    from rest_framework.views import APIView

    runs = []

    class In(serializers.Serializer):
        n = serializers.IntegerField()

    class Echo(APIView):
        required_scopes = {"POST": "customers:read"}

        def post(self, request, version):
            data = In(data=request.data)
            data.is_valid(raise_exception=True)
            runs.append(data.validated_data["n"])
            if data.validated_data["n"] == 500:
                raise RuntimeError("boom")
            return Response({"run": len(runs), "n": data.validated_data["n"]}, status=201)

    import config.urls

    urls = type("Urls", (), {})()
    urls.urlpatterns = [path("api/<str:version>/echo/", Echo.as_view()), *config.urls.urlpatterns]
    urls.handler404 = config.urls.handler404
    urls.handler500 = config.urls.handler500
    import sys

    sys.modules["tests._echo_urls"] = urls
    settings.ROOT_URLCONF = "tests._echo_urls"
    clear_url_caches()
    yield runs
    clear_url_caches()


def test_the_same_idempotency_key_replays_the_first_answer(echo_endpoint):
    client = key_client("customers:read")
    first = client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"run": 1, "n": 1}
    assert again["Idempotent-Replayed"] == "true"
    assert echo_endpoint == [1]
    third = client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert third.json()["run"] == 2


def test_the_same_key_with_a_different_body_gets_422(echo_endpoint):
    client = key_client("customers:read")
    client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = client.post("/api/v1/echo/", {"n": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422
    assert error_code(response) == "idempotency_key_reused"
    assert echo_endpoint == [1]


def test_keys_are_per_api_key(echo_endpoint):
    key_client("customers:read").post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = key_client("customers:read").post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert echo_endpoint == [1, 1]


def test_a_validation_error_is_replayed_but_a_refusal_of_the_key_is_not(echo_endpoint):
    _, token = make_key("customers:read")
    client = client_with(token)
    bad = client.post("/api/v1/echo/", {"n": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert bad.status_code == 400
    assert client.post("/api/v1/echo/", {"n": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")["Idempotent-Replayed"]
    lacking = key_client("orders:read")
    assert lacking.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-9").status_code == 403
    assert not IdempotentRequest.objects.filter(key="k-9").exists()


def test_a_request_still_running_gets_409_and_a_dead_one_is_taken_over_after_the_lease(echo_endpoint):
    from kernel.idempotency import RequestInProgress, idempotency_begin

    client, _info = key_client_and_key("customers:read")
    token_principal = None
    first = client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    token_principal = IdempotentRequest.objects.get(key="k-1").principal
    assert first.status_code == 201
    # a first try that is still running (or died before answering)
    IdempotentRequest.objects.create(principal=token_principal, key="k-run", fingerprint="f")
    with pytest.raises(RequestInProgress):
        idempotency_begin(principal=token_principal, key="k-run", fingerprint="f")
    response = client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-run")
    assert response.status_code in (409, 422)
    IdempotentRequest.objects.filter(key="k-run").update(
        started_at=timezone.now() - IDEMPOTENCY_LEASE - timedelta(seconds=1)
    )
    outcome = idempotency_begin(principal=token_principal, key="k-run", fingerprint="f")
    assert outcome.record_id is not None
    assert outcome.replay is None


def test_a_crash_in_the_view_frees_the_key_for_a_retry(echo_endpoint, client):
    api = key_client("customers:read")
    api.raise_request_exception = False
    response = api.post("/api/v1/echo/", {"n": 500}, format="json", HTTP_IDEMPOTENCY_KEY="k-boom")
    assert response.status_code == 500
    assert not IdempotentRequest.objects.filter(key="k-boom").exists()


def test_keys_expire_after_24_hours(echo_endpoint):
    client = key_client("customers:read")
    client.post("/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    IdempotentRequest.objects.update(started_at=timezone.now() - IDEMPOTENCY_TTL - timedelta(minutes=1))
    again = client.post("/api/v1/echo/", {"n": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201
    assert again.json()["run"] == 2
    IdempotentRequest.objects.update(started_at=timezone.now() - IDEMPOTENCY_TTL - timedelta(minutes=1))
    assert idempotency_purge() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_posts_with_one_key_run_once(echo_endpoint):
    _, token = make_key("customers:read")
    answers = []
    barrier = threading.Barrier(10)

    def send():
        from django.db import connections

        client = client_with(token)
        barrier.wait()
        r = client.post("/api/v1/echo/", {"n": 7}, format="json", HTTP_IDEMPOTENCY_KEY="same")
        answers.append(r.status_code)
        connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert echo_endpoint == [7]
    assert set(answers) <= {201, 409}
    assert answers.count(201) >= 1


def test_an_overlong_idempotency_key_gets_400(echo_endpoint):
    response = key_client("customers:read").post(
        "/api/v1/echo/", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_idempotency_key"


# ---------------------------------------------------------------- schema and docs


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_names_its_scope_and_the_error_shape(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    assert "Error" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation.get("x-required-scope"), f"{method.upper()} {path} names no scope"
            assert "401" in operation["responses"]
            assert "403" in operation["responses"]


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_api_docs_are_served_from_our_own_static_files(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(s.startswith(("/static/", "/api/")) for s in sources), sources
    assert "cdn" not in html.lower()
    assert revoked_client  # the helpers module is importable (used by every endpoint test)


# ---------------------------------------------------------------- every operation of the schema


def operations() -> list[tuple[str, str, str]]:
    """(method, path with dummy parameters, required scope) for every operation in the schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                concrete = re.sub(r"\{[^}]+\}", "1", path)
                found.append((method, concrete, operation["x-required-scope"]))
    return found


OPERATIONS = operations()


def call(client, method: str, path: str):
    return getattr(client, method)(path, {} if method != "get" else None, format="json")


@pytest.mark.parametrize(("method", "path", "scope"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_operation_refuses_a_key_without_its_scope_with_403_naming_it(method, path, scope):
    from tests.api import other_scopes

    response = call(key_client(*other_scopes(scope)), method, path)
    assert response.status_code == 403, response.content
    assert error_code(response) == "missing_scope"
    assert scope in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "scope"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_operation_refuses_a_revoked_key_and_no_key_with_401(method, path, scope, client):
    from tests.api import ALL_SCOPES

    response = call(revoked_client(*ALL_SCOPES), method, path)
    assert response.status_code == 401
    assert error_code(response) == "authentication_failed"
    assert call(client_with(None), method, path).status_code == 401


def test_the_schema_has_every_endpoint_the_issue_lists():
    paths = {p for _, p, _ in OPERATIONS}
    assert "/api/v1/customers/" in paths
