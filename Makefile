# ProSaaS — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/common[web] -e services/api -e services/calls -e services/worker -e services/scheduler
INSTALL_STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.DEFAULT_GOAL := help
.PHONY: help install dev check-services migrate migrate-down test test-common test-api test-calls \
        test-worker test-scheduler test-migrations lint typecheck format clean

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

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy (strict)
	$(BIN)/mypy

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
