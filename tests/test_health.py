from __future__ import annotations

import pytest

from config import health
from config.celery import app as celery_app

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def test_healthz_answers_without_touching_anything(client):
    # No django_db mark: pytest-django makes any database access an error, so this proves /healthz does no I/O.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_every_part_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_cache(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "kernel.cache.RedisCache",
            "LOCATION": CLOSED_PORT_REDIS,
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["cache"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("unavailable")


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = celery_app.conf.broker_url
    celery_app.conf.broker_url = CLOSED_PORT_REDIS
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = saved
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_checks_a_real_redis_broker(client, settings):
    import os

    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = celery_app.conf.broker_url
    celery_app.conf.broker_url = os.environ["REDIS_URL"]
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = saved
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_readyz_names_a_failing_database(client, monkeypatch):
    def database_down() -> str:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", database_down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
