"""The per-process Runtime: the live clients every handler of a service uses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    components: dict[type[Any], Any] = field(default_factory=dict)

    def put(self, component: Any) -> None:
        """Register a service's own long-lived object (e.g. its inventory client), by its type."""
        self.components[type(component)] = component

    def get(self, kind: type[C]) -> C:
        return self.components[kind]  # type: ignore[no-any-return]

    async def check_kafka(self) -> None:
        if not self.started.is_set():
            raise ConnectionError("consumers not started yet")
        if not await self.broker.ping(timeout=1.5):
            raise ConnectionError(f"no answer from {self.settings.kafka_bootstrap_servers}")

    def readiness_checks(self, scope: str = "all") -> Mapping[str, Check]:
        return {"kafka": self.check_kafka, "mongodb": self.mongo.ping, "redis": self.redis.ping}
