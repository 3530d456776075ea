"""Settings come from the environment; production refuses unsafe settings."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_VARS = [
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_QUEUE",
    "RABBITMQ_CONSUMER_TIMEOUT",
    "EMAIL_HOST",
    "EMAIL_BACKEND",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "VAR_DIR",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DB_PREPARED_STATEMENTS",
]

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
from config.celery import app
print(json.dumps({
    "debug": settings.DEBUG,
    "db_engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_options": settings.DATABASES["default"].get("OPTIONS", {}),
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "media": settings.STORAGES["default"]["BACKEND"],
    "media_options": settings.STORAGES["default"].get("OPTIONS", {}),
    "email": settings.EMAIL_BACKEND,
    "celery": {k: app.conf[k] for k in ("task_acks_late", "task_reject_on_worker_lost", "task_serializer",
               "accept_content", "task_time_limit", "worker_prefetch_multiplier")},
    "visibility_timeout": app.conf.broker_transport_options.get("visibility_timeout"),
    "transport_options": app.conf.broker_transport_options,
    "routes": list(app.conf.task_routes),
    "max_countdown": settings.CELERY_MAX_COUNTDOWN,
}))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def settings_with(**env: str) -> dict:
    result = run(["-c", PRINT_SETTINGS], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def strong_key() -> str:
    return secrets.token_urlsafe(50)


def test_embedded_defaults_need_no_services(tmp_path):
    s = settings_with(DEBUG="1", VAR_DIR=str(tmp_path))
    assert s["db_engine"] == "django.db.backends.sqlite3"
    assert s["db_name"] == str(tmp_path / "db.sqlite3")
    assert s["cache"].endswith("LocMemCache")
    assert s["eager"] is True, "without Redis, tasks run in-process"
    assert s["media"] == "django.core.files.storage.FileSystemStorage"
    assert s["email"].endswith("console.EmailBackend")


def test_database_and_redis_urls_switch_to_postgres_and_redis():
    s = settings_with(
        DEBUG="1", DATABASE_URL="postgres://shop:pw@db.internal:5432/shop", REDIS_URL="redis://cache.internal:6379/1"
    )
    assert s["db_engine"] == "django.db.backends.postgresql"
    assert s["cache"].endswith("RedisCache")
    assert s["eager"] is False
    assert s["broker"] == "redis://cache.internal:6379/1"
    assert s["db_options"] == {
        "server_side_binding": True,
        "prepare_threshold": 5,
        "options": "-c pg_trgm.word_similarity_threshold=0.45",  # catalog's search, set when the connection opens
    }, "prepared statements"


def test_prepared_statements_can_be_switched_off_for_a_transaction_pooler():
    s = settings_with(DEBUG="1", DATABASE_URL="postgres://shop:pw@pgbouncer:6432/shop", DB_PREPARED_STATEMENTS="0")
    assert s["db_engine"] == "django.db.backends.postgresql"
    assert "prepare_threshold" not in s["db_options"]
    assert "server_side_binding" not in s["db_options"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_prepares_a_statement_a_connection_runs_often():
    from django.db import connection

    from accounts.models import User

    for _ in range(7):
        list(User.objects.filter(email="nobody@example.com"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("accounts_user" in sql and "email" in sql for sql in prepared), prepared


def test_s3_media_storage_and_smtp_email_from_the_environment():
    s = settings_with(
        DEBUG="1",
        AWS_STORAGE_BUCKET_NAME="shop-media",
        AWS_S3_ENDPOINT_URL="https://s3.example.net",
        EMAIL_HOST="smtp.example.net",
    )
    assert s["media"] == "storages.backends.s3.S3Storage"
    assert s["media_options"]["bucket_name"] == "shop-media"
    assert s["media_options"]["endpoint_url"] == "https://s3.example.net"
    assert s["email"].endswith("smtp.EmailBackend")


def test_celery_defaults_do_not_lose_work():
    c = settings_with(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/0")
    assert c["celery"]["task_acks_late"] is True
    assert c["celery"]["task_reject_on_worker_lost"] is True
    assert c["celery"]["task_serializer"] == "json"
    assert c["celery"]["accept_content"] == ["json"]
    assert c["celery"]["task_time_limit"] > 0
    assert c["celery"]["worker_prefetch_multiplier"] == 1
    assert c["visibility_timeout"] > c["max_countdown"]


def test_rabbitmq_as_the_broker_needs_no_visibility_timeout_and_confirms_each_publish():
    c = settings_with(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/0",
                      CELERY_BROKER_URL="amqp://guest:guest@rabbit.internal:5672/shop")  # fmt: skip
    assert c["broker"] == "amqp://guest:guest@rabbit.internal:5672/shop"
    assert c["eager"] is False
    assert c["transport_options"] == {"confirm_publish": True}, "Redis-only options are not passed to RabbitMQ"
    assert c["celery"]["task_acks_late"] is True
    assert c["celery"]["worker_prefetch_multiplier"] == 1
    # The worker holds a delayed task unacknowledged until it runs: countdown + time limit < consumer_timeout.
    assert c["max_countdown"] + c["celery"]["task_time_limit"] < 30 * 60
    assert c["max_countdown"] >= 600, "the longest retry back-off fits"
    assert c["routes"] == ["config.celery.route_task"]


def test_a_rabbitmq_consumer_timeout_too_short_for_the_retries_is_refused():
    result = run(["-c", PRINT_SETTINGS], DEBUG="1", CELERY_BROKER_URL="amqp://rabbit.internal//",
                 RABBITMQ_CONSUMER_TIMEOUT="900")  # fmt: skip
    assert result.returncode != 0
    assert "RABBITMQ_CONSUMER_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT" in result.stderr


def test_check_deploy_is_clean_with_a_real_key_and_host():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY=strong_key(),
        ALLOWED_HOSTS="shop.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "shop.example.com"}, "SECRET_KEY is not set"),
        (
            {
                "SECRET_KEY": "django-insecure-development-key-never-use-it-in-production-0123456789",
                "ALLOWED_HOSTS": "shop.example.com",
            },
            "development key or too weak",
        ),
        ({"SECRET_KEY": "short", "ALLOWED_HOSTS": "shop.example.com"}, "development key or too weak"),
        ({"SECRET_KEY": strong_key()}, "ALLOWED_HOSTS is not set"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env, message):
    result = run(["manage.py", "check"], DEBUG="0", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_typo_in_a_boolean_is_reported_not_guessed():
    result = run(["manage.py", "check"], DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr
