"""The per-process Runtime: the live clients every handler of a service uses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from shared.config import ServiceSettings
from shared.http import Check
from shared.messaging.outbox import UnitOfWork
from shared.messaging.relay import OutboxRelay
from shared.mongo import Mongo
from shared.telemetry import Telemetry

C = TypeVar("C")


@dataclass
class LoopState:
    """What `/health/ready` shows of one supervised background loop."""

    status: str = "starting"
    restarts: int = 0
    last_error: str | None = None


@dataclass
class Runtime:
    """Everything a service's handlers need; one per process, in `app.state.runtime`."""

    settings: ServiceSettings
    mongo: Mongo
    redis: Redis
    broker: KafkaBroker
    uow: UnitOfWork
    relay: OutboxRelay
    telemetry: Telemetry
    started: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    deps: Any = None
    """The service's typed Deps (built by `ServiceSpec.deps`); each service reads it through its
    own typed accessor, e.g. `OrderDeps` in controllers and `ctx.deps` in handlers."""
    loops: dict[str, LoopState] = field(default_factory=dict)

    async def check_kafka(self) -> None:
        if not self.started.is_set():
            raise ConnectionError("consumers not started yet")
        if not await self.broker.ping(timeout=1.5):
            raise ConnectionError(f"no answer from {self.settings.kafka_bootstrap_servers}")

    def health_details(self) -> dict[str, Any]:
        return {"background": {name: asdict(state) for name, state in self.loops.items()}}

    def readiness_checks(self, scope: str = "all") -> Mapping[str, Check]:
        return {"kafka": self.check_kafka, "mongodb": self.mongo.ping, "redis": self.redis.ping}
