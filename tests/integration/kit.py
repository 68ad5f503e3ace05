"""Building blocks for messaging tests on the real stack: a throwaway event type on its own topic,
a service-like settings object with its own database and consumer group, and a consumer whose
effect (a counter per thing) shows exactly how often an event was applied.

Used in the test process and by `tests/integration/worker.py` in child processes (crash tests),
so both sides build identical models from the same suffix.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any, ClassVar

import msgspec
from faststream.kafka import KafkaBroker

from shared.config import ServiceSettings
from shared.contracts.registry import Event, event
from shared.messaging.broker import create_broker, ensure_topics
from shared.messaging.consumer import Dispatcher, EventRouter, HandlerContext, RejectEvent
from shared.messaging.inbox import INBOX_INDEXES
from shared.messaging.outbox import OUTBOX_INDEXES, UnitOfWork
from shared.messaging.relay import OutboxRelay
from shared.messaging.scan import scan
from shared.mongo import Mongo, connect, ensure_indexes


@functools.cache
def thing_event(suffix: str) -> type[Event]:
    """`test.thing-happened.<suffix>` on topic `test.things.<suffix>`, keyed by thing_id."""
    model = msgspec.defstruct(
        f"ThingHappened_{suffix}",
        [("thing_id", str), ("amount", int)],
        bases=(Event,),
        frozen=True,
        kw_only=True,
    )
    return event(f"test.thing-happened.{suffix}", topic=f"test.things.{suffix}", key="thing_id")(model)


def settings_for(name: str, **overrides: Any) -> ServiceSettings:
    cls = type(
        f"Settings_{name}",
        (ServiceSettings,),
        {"__annotations__": {"service_name": ClassVar[str]}, "service_name": name},
    )
    return cls(**overrides)  # type: ignore[no-any-return]


def thing_router(service: str, model: type[Event]) -> EventRouter:
    """Applies a thing: +1 applied, +amount total. Negative amounts are a bug in the sender
    (RejectEvent); amount 13 fails while the `broken` flag document exists (a transient bug)."""
    router = EventRouter(service)

    @router.handles(model)
    async def apply_thing(payload: Any, ctx: HandlerContext) -> None:
        if payload.amount < 0:
            raise RejectEvent("amount must not be negative")
        if payload.amount == 13 and await ctx.tx.db.flags.find_one({"_id": "broken"}, session=ctx.tx.session):
            raise ValueError("unlucky thirteen while broken")
        await ctx.tx.db.things.update_one(
            {"_id": payload.thing_id},
            {"$inc": {"applied": 1, "total": payload.amount}},
            upsert=True,
            session=ctx.tx.session,
        )

    return router


class Node:
    """One 'service' of the test: its database, broker, unit of work, relay and consumer."""

    def __init__(self, settings: ServiceSettings, model: type[Event]) -> None:
        self.settings = settings
        self.model = model
        self.topic: str = model.__topic__
        self.mongo: Mongo = connect(settings.mongodb_url, settings.database_name)
        self.broker: KafkaBroker = create_broker(settings)
        self.relay = OutboxRelay(self.mongo, self.broker, settings)
        self.uow = UnitOfWork(self.mongo, producer=settings.service_name, on_commit=self.relay.wake)
        self.deliveries: Counter[str] = Counter()
        self.dispatcher: Dispatcher | None = None

    async def setup(self) -> None:
        await ensure_indexes(self.mongo.db, [*OUTBOX_INDEXES, *INBOX_INDEXES])
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [self.topic, self.topic + ".dlq"],
            partitions=3,
            replication_factor=1,
        )

    def consume(self) -> None:
        """Subscribe before start(); counts every delivery (event id) the consumer has handled."""
        router = thing_router(self.settings.service_name, self.model)
        self.dispatcher = router.subscribe(self.broker, self.uow, self.settings)
        original = self.dispatcher.dispatch

        async def counting(message: Any) -> None:
            # Counted once the dispatch is over (committed, or given up): a batch's records all
            # arrive before any of them is applied, so counting on arrival raced the commit.
            raw = message.raw_message  # one record, or a batch's tuple of them
            try:
                await original(message)
            finally:
                for record in raw if isinstance(raw, tuple) else (raw,):
                    self.deliveries[_event_id(record)] += 1

        self.dispatcher.dispatch = counting  # type: ignore[method-assign]

    async def start(self) -> None:
        await self.setup()
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.stop()
        self.mongo.close()

    async def applied(self, thing_id: str) -> int:
        doc = await self.mongo.db.things.find_one({"_id": thing_id})
        return int(doc["applied"]) if doc else 0

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.05)


def _event_id(record: Any) -> str:
    return dict(record.headers or ()).get("event_id", b"?").decode()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on a topic right now (all partitions), as aiokafka ConsumerRecords."""
    return await scan(bootstrap, [topic])
