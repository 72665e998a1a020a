# ProSaaS — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/common[web] -e services/api -e services/calls -e services/worker -e services/scheduler
INSTALL_STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.DEFAULT_GOAL := help
.PHONY: help install dev seed check-services migrate migrate-down test test-common test-api test-calls \
        test-worker test-scheduler test-deploy lint typecheck format clean api-operations \
        deploy validate ps logs up-multi-worker network call-demo

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(INSTALL_STAMP): pyproject.toml constraints.txt libs/common/pyproject.toml services/*/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(PACKAGES) -e '.[dev]'
	touch $@

install: $(INSTALL_STAMP) ## Create .venv and install every package with the pinned dependencies

check-services: install ## Check that Postgres and Redis answer at DATABASE_URL / REDIS_URL
	@set -a; [ ! -f .env ] || . ./.env; set +a; $(BIN)/python -m prosaas_common.checks --create-database

migrate: install ## Apply migrations (alembic upgrade head under the advisory lock)
	@set -a; [ ! -f .env ] || . ./.env; set +a; $(BIN)/prosaas-migrate upgrade head

migrate-down: install ## Revert every migration (alembic downgrade base) — development only
	@set -a; [ ! -f .env ] || . ./.env; set +a; $(BIN)/prosaas-migrate downgrade base

dev: install check-services migrate ## Run api, calls, worker and scheduler together (Ctrl-C stops all)
	$(BIN)/honcho start -f Procfile

seed: install check-services migrate ## Demo business, users, statuses and ~200 leads for make dev
	@set -a; [ ! -f .env ] || . ./.env; set +a; $(BIN)/python -m prosaas_api seed-demo $(SEED_ARGS)

call-demo: install ## Place a simulated Twilio call against a running make dev (CALL_DEMO_ARGS="--calls 3")
	@set -a; [ ! -f .env ] || . ./.env; set +a; $(BIN)/python -m prosaas_calls.simulate $(CALL_DEMO_ARGS)

test: install ## Run every test suite
	$(PYTEST) tests

test-common: install ## Shared library tests
	$(PYTEST) tests/common

test-api: install ## API service tests
	$(PYTEST) tests/api

test-calls: install ## Calls service tests
	$(PYTEST) tests/calls

test-worker: install ## Worker tests
	$(PYTEST) tests/worker

test-scheduler: install ## Scheduler tests
	$(PYTEST) tests/scheduler

test-deploy: install ## Deploy tests: compose invariants, images, live nginx, runbook scripts
	$(PYTEST) tests/deploy

# ---- production (Docker Compose; see docs/operations.md) ---------------------------------------------
network: ## Create the external Docker network if missing (idempotent)
	scripts/ensure_docker_network.sh

deploy: ## Network → build → migrate → up -d → wait for health → validate
	scripts/deploy.sh

up-multi-worker: ## Deploy with one worker per queue (profile multi-worker, worker scaled to 0)
	PROSAAS_MULTI_WORKER=1 scripts/deploy.sh

validate: ## Run the production checklist against the running stack (PASS/WARN/FAIL table)
	scripts/validate_production.sh

ps: ## Production services and their health
	scripts/dcprod.sh ps

logs: ## Recent logs of one service: make logs S=worker
	@test -n "$(S)" || { echo "usage: make logs S=<service>  (prosaas-api, prosaas-calls, worker, scheduler, redis, nginx, migrate)"; exit 2; }
	scripts/dcprod.sh logs --tail=200 -f $(S)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy (strict)
	$(BIN)/mypy

api-operations: install ## Regenerate docs/api-operations.md (operation ids and permissions)
	$(BIN)/python -m prosaas_api.operations_doc > docs/api-operations.md

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
