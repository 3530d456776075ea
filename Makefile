# The shop's commands. A newcomer needs two: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# make worker QUEUES=email,events: a worker on those queue groups only (kernel.celery.QUEUE_GROUPS); default all.
QUEUES ?=

# Development defaults; anything set in the environment wins.
run test worker beat bench: export DEBUG ?= 1

.DEFAULT_GOAL := help
.PHONY: help install npm run test lint worker beat bench lock clean

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0] + ": run make with PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@mkdir -p var/static var/media
	@touch $@

install: $(BIN)/.installed ## create the virtualenv and install the locked requirements

# axe-core for the accessibility checks of the browser tests, from package-lock.json. The stamp lives inside
# node_modules/axe-core, so removing either folder or changing the lock installs again. Without npm the axe tests
# skip (and fail under SHOP_REQUIRE_SERVICES=1); `make run` never needs Node.
AXE_STAMP := node_modules/axe-core/.installed
$(AXE_STAMP): package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund && touch $@; \
	else echo "npm not found: the accessibility (axe-core) browser tests will not run (apt-get install nodejs npm)"; fi

npm: $(AXE_STAMP) ## install the Node packages the browser tests use (axe-core), with npm ci

run: install ## migrate, load the demo shop and serve it on http://127.0.0.1:8000 (SQLite, no Redis needed)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install lint npm ## ruff, import-linter and the whole pytest suite (with axe-core from npm)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff (lint and format), the module-boundary contracts and the OpenAPI schema (no warnings)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

worker: install ## a Celery worker on every queue, or on some: make worker QUEUES=email,events (needs REDIS_URL)
	@test -n "$$REDIS_URL$$CELERY_BROKER_URL" || { echo "make worker needs REDIS_URL (without it tasks run in-process)"; exit 2; }
	queues=$$($(BIN)/python -c 'import os, sys; from kernel.celery import worker_queues; groups = sys.argv[1]; print(",".join(worker_queues(os.environ.get("CELERY_QUEUE") or "shop", groups.split(",") if groups else None)))' '$(QUEUES)') \
	  && $(BIN)/celery -A config worker --loglevel=INFO --queues "$$queues"

beat: install ## the Celery scheduler for periodic tasks (needs REDIS_URL)
	@test -n "$$REDIS_URL$$CELERY_BROKER_URL" || { echo "make beat needs REDIS_URL"; exit 2; }
	$(BIN)/celery -A config beat --loglevel=INFO --schedule var/celerybeat-schedule

bench: install ## storefront pages with wrk (req/s, p50, p99), then checkout orders per second with an oversell check
	$(BIN)/python bench/run.py
	$(BIN)/python bench/checkout.py
	$(BIN)/python bench/recs.py

lock: install ## re-resolve requirements.lock and requirements-dev.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --no-header --annotation-style line -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header --annotation-style line -o requirements-dev.lock

clean: ## remove the virtualenv and local data (var/)
	rm -rf $(VENV) var .pytest_cache .ruff_cache
