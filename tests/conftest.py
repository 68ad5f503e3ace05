"""Test harness: the real embedded stack once per session (or the servers named by
KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL / REDIS_URL), and the whole platform for end-to-end tests.

Logs of every server and service process are kept under `.kameng/test-runs/<run>/` so a failed
CI run can be read afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.otlp import Collector, start_collector

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".kameng" / "test-runs" / time.strftime("%Y%m%d-%H%M%S")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    kinds = {"browser" in Path(str(item.fspath)).parts for item in items}
    if kinds == {True, False}:
        # Playwright's sync API keeps its own event loop running in the main thread, and every
        # asyncio test after it would fail with "Runner.run() cannot be called from a running
        # event loop": the browser tests get a pytest process of their own (`make test` does so).
        raise pytest.UsageError("run tests/browser in its own pytest process: `make test` runs both")
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack() -> Iterator[EmbeddedStack]:
    embedded = EmbeddedStack(run_dir=RUN_DIR / "stack")
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def infra(stack: EmbeddedStack) -> dict[str, str]:
    """KAFKA_BOOTSTRAP_SERVERS, MONGODB_URL and REDIS_URL of the running stack."""
    return stack.env()


@pytest.fixture(scope="session")
def base_env(infra: dict[str, str]) -> dict[str, str]:
    env = default_base_env(infra)
    env.update(
        {
            "KAMENG_ENV": "test",
            # Time-based behaviour shortened so tests can watch it happen.
            "DIRECT_POLL_AFTER_SECONDS": "1",
            "DIRECT_RETRY_BACKOFF_SECONDS": "0.2",
            "URGE_WAIT_MINUTES": "0.02",
            "SUPPLIER_LATENCY_MS": "100",
        }
    )
    return env


TRACE_VIEWER = "http://127.0.0.1:16686/trace/{trace_id}"


@pytest.fixture(scope="session")
def otlp() -> Iterator[Collector]:
    """Spans exported over OTLP/HTTP by the platform's processes."""
    collector, server = start_collector()
    yield collector
    server.shutdown()


@pytest.fixture(scope="session")
def platform(base_env: dict[str, str], otlp: Collector) -> Iterator[Platform]:
    """Every service and the gateway as separate processes on the real stack, exporting traces."""
    env = {
        **base_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        # Where the console links an order's trace (only the link is checked, never opened).
        "TRACE_VIEWER_URL": TRACE_VIEWER,
        # The wallet polls the payment provider for top-ups pending this long (60 s by default),
        # and closes unpaid ones after a while, so the tests do not wait for minutes.
        "TOPUP_POLL_AFTER_SECONDS": "4",
        "TOPUP_POLL_INTERVAL_SECONDS": "0.5",
        "TOPUP_EXPIRE_AFTER_SECONDS": "12",
        # Short clocks for support (read by support only), so the SLA flag and webhook
        # retries show within a test; set from the start because a restart costs a rebalance.
        "TICKET_SLA_MINUTES": "0.05",  # 3 s
        "WEBHOOK_BACKOFF_INITIAL_MS": "200",
        "WEBHOOK_MAX_ATTEMPTS": "4",
        # Scheduled orders (自动充值, read by order only): a "month" lasts 3 s, due runs are
        # looked for twice a second, so a test watches several runs.
        "SUBSCRIPTION_PERIOD_SECONDS": "3",
        "SUBSCRIPTION_TICK_SECONDS": "0.5",
        # Agents' commissions leave the after-sales window within a test (read by the wallet only).
        "AGENT_COMMISSION_HOLD_SECONDS": "6",
        "AGENT_COMMISSION_SWEEP_SECONDS": "0.5",
        # 订单到期提醒 (read by fulfilment only): the sweep looks every second.
        "KEY_REMINDER_SWEEP_SECONDS": "1",
        # Real-name documents (read by identity only): decided reviews lose their images after
        # 4 s, looked for twice a second.
        "REAL_NAME_DOCUMENT_RETENTION_SECONDS": "4",
        "REAL_NAME_DOCUMENT_SWEEP_SECONDS": "0.5",
    }
    running = Platform(base_env=env, logs_dir=RUN_DIR / "platform")
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
def test_env(monkeypatch: pytest.MonkeyPatch, infra: dict[str, str]) -> dict[str, str]:
    """Point settings objects built in the test process at the stack."""
    for key, value in infra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KAMENG_ENV", "test")
    return dict(os.environ)
