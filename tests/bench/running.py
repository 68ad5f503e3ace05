"""The platform a buyer-flow benchmark runs against: the embedded stack, every service with the
test settings, and a `Flows` client through the gateway; all stopped when the benchmark ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.flows import Flows


@asynccontextmanager
async def platform_with_flows(run_dir: Path) -> AsyncIterator[tuple[dict[str, str], Flows]]:
    """(the stack's addresses, a Flows client with 200 requests in flight at most)."""
    with EmbeddedStack(run_dir=run_dir / "stack") as infra:
        platform = Platform(base_env={**default_base_env(infra), "KAMENG_ENV": "test"}, logs_dir=run_dir / "logs")
        platform.start()
        flows = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=200)
        try:
            yield infra, flows
        finally:
            await flows.close()
            platform.stop()
