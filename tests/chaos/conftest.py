"""The crash suite's own stack and platform: its faults (Redis killed and back empty, services
SIGKILLed) must not reach the session's stack that the other tests share. The chaos table is
printed at the end of the run (and written next to the logs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.conftest import RUN_DIR

CHAOS_DIR = RUN_DIR / "chaos"


@dataclass
class Harness:
    stack: EmbeddedStack
    platform: Platform

    @property
    def bootstrap(self) -> str:
        return self.stack.env()["KAFKA_BOOTSTRAP_SERVERS"]


# Module scope: torn down as soon as the crash tests end, so this second platform does not run
# beside the session's one through the rest of the suite.
@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    stack = EmbeddedStack(run_dir=CHAOS_DIR / "stack", use_environment=False)
    infra = stack.start()
    env = default_base_env(infra)
    env.update(
        {
            "KAMENG_ENV": "test",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "PLACE_WAIT_SECONDS": "2",
        }
    )
    platform = Platform(base_env=env, logs_dir=CHAOS_DIR / "platform")
    try:
        platform.start()
        yield Harness(stack=stack, platform=platform)
    finally:
        platform.stop()
        stack.stop()


HEADER = (
    "fault",
    "201s",
    "delivered",
    "refunded",
    "stuck",
    "201 not delivered",
    "keys twice",
    "money delta",
    "503s",
    "settled after",
)
TABLE: list[tuple[object, ...]] = []


def table_lines() -> list[str]:
    rows = [HEADER, *TABLE]
    return ["| " + " | ".join(str(c) for c in row) + " |" for row in rows[:1]] + [
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows[1:]),
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TABLE:
        return
    terminalreporter.section("chaos table (tests/chaos)")
    for line in table_lines():
        terminalreporter.write_line(line)
    CHAOS_DIR.mkdir(parents=True, exist_ok=True)
    (CHAOS_DIR / "table.md").write_text("\n".join(table_lines()) + "\n")
