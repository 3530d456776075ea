"""The storefront shell, error pages for people and JSON errors for API clients."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from config import views

pytestmark = pytest.mark.django_db


def test_home_page_renders_as_the_shop(client, settings):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Welcome to {settings.SHOP_NAME}" in html
    assert 'href="#main"' in html, "skip link for keyboard users"
    assert "/static/css/shop.css" in html
    assert "cdn" not in html.lower(), "nothing is loaded from a CDN"


def test_home_page_refuses_posts_cleanly(client):
    assert client.post("/").status_code == 405


def test_unknown_page_gets_the_shops_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()
    assert "/static/css/shop.css" in response.content.decode()


def test_unknown_api_address_gets_a_json_404(client):
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_server_error_page_for_people_and_for_api_clients():
    page = views.server_error(RequestFactory().get("/somewhere"))
    assert page.status_code == 500
    assert b"Something went wrong on our side" in page.content
    api = views.server_error(RequestFactory().get("/api/v1/orders/"))
    assert api.status_code == 500
    assert b'"code": "server_error"' in api.content


def test_openapi_schema_is_public_and_versioned(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["version"] == "1.0.0 (v1)"


def test_api_docs_are_served_without_a_cdn(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert "cdn.jsdelivr" not in response.content.decode()


def test_robots_txt_keeps_crawlers_out_of_admin_and_api(client):
    body = client.get("/robots.txt").content.decode()
    assert "Disallow: /admin/" in body
    assert "Disallow: /api/" in body
