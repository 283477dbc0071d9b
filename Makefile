# SMS Admin: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTHON_FOR_VENV ?= $(shell scripts/find-python.sh)
STAMP := $(VENV)/.installed

help:
	@echo "make run    set up and run the product on its embedded defaults (http://127.0.0.1:8000)"
	@echo "make test   set up and run every check against real PostgreSQL and Redis"
	@echo "make bench  run the benchmarks in bench/ (not part of the tests)"
	@echo "make lint   ruff (lint and format check) only"
	@echo "make audit  pip-audit of the dependencies (part of make test)"
	@echo "make format apply ruff's formatting and autofixes"

$(BIN)/python:
	$(PYTHON_FOR_VENV) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# checkov (the Terraform checks) pins old boto3 and packaging: it gets a venv of its own.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON_FOR_VENV) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet 'checkov>=3.2,<4'

run: $(STAMP)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/honcho start -f Procfile

services:
	scripts/ensure-test-services.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Known vulnerabilities in the dependencies (pip-audit; accepted ones in scripts/audit-ignore.txt).
audit: $(STAMP)
	scripts/audit-dependencies.sh

test: $(STAMP) $(CHECKOV) services lint audit
	DJANGO_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n 2 --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

bench: $(STAMP) services
	$(BIN)/python bench/run.py $(BENCH_ARGS)

.PHONY: help install run services lint format audit test bench
