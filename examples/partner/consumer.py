"""Read your own Kameng order events from Kafka with aiokafka, applying each event once.

    feed = GET /api/v1/partner/feed   ->  {topic, bootstrap_servers, consumer_group_prefix, schema_url}
    consumer = FeedConsumer(feed, OrderBook(), name="erp")
    await consumer.start(); await consumer.poll(); ...; await consumer.stop()

The consumer group is `consumer_group_prefix + name` (in production your Kafka user may use only
groups with that prefix, and read only your topic). Offsets are committed after the events are
applied, so a crash re-reads them; a replay publishes events again with the same `event_id`s; so
`OrderBook.apply` deduplicates on `event_id`. Keep `seen` durable in a real system (e.g. a table
with a unique `event_id`, written in the same transaction as the effect).

Clients known to work with `make dev`'s embedded broker: aiokafka (this file). librdkafka-based
clients (kcat, confluent-kafka for Python/Go/.NET) cannot talk to it; use them against a real Kafka
(docker compose, k8s), where every client works. Environment for SASL/SCRAM (production):
KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SECURITY_PROTOCOL (default SASL_SSL when a user is set).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer


@dataclass
class OrderBook:
    """The partner's own view of its orders: each event applied once, whatever the channel
    (Kafka or webhook) and however often it arrives."""

    seen: set[str] = field(default_factory=set)
    status: dict[str, str] = field(default_factory=dict)
    changed_at: dict[str, datetime] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, event: dict[str, Any]) -> bool:
        """True when the event was new and applied, False for a repeat (same `event_id`)."""
        with self.lock:
            if event["event_id"] in self.seen:
                self.duplicates += 1
                return False
            self.seen.add(event["event_id"])
            # Retries, replays and concurrent webhook sends can overtake one another: an order
            # only moves to a change that happened at or after the one it shows.
            order_id, at = event["order_id"], datetime.fromisoformat(event["occurred_at"])
            if order_id not in self.changed_at or at >= self.changed_at[order_id]:
                self.status[order_id] = event["status"]
                self.changed_at[order_id] = at
            self.applied.append(event)
            return True


def security_options() -> dict[str, Any]:
    user = os.environ.get("KAFKA_SASL_USERNAME")
    if not user:
        return {}
    return {
        "security_protocol": os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        "sasl_mechanism": os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        "sasl_plain_username": user,
        "sasl_plain_password": os.environ.get("KAFKA_SASL_PASSWORD", ""),
    }


class FeedConsumer:
    def __init__(self, feed: dict[str, str], book: OrderBook, *, name: str = "quickstart", **options: Any) -> None:
        self.feed = feed
        self.book = book
        self.group_id = feed["consumer_group_prefix"] + name
        self.received: list[dict[str, Any]] = []
        """Every record read, repeats included (what `book` skipped shows up here)."""
        self.consumer = AIOKafkaConsumer(
            feed["topic"],
            bootstrap_servers=feed["bootstrap_servers"],
            group_id=self.group_id,
            auto_offset_reset="earliest",  # a new group starts at the oldest retained event
            enable_auto_commit=False,  # commit only what has been applied
            **{**security_options(), **options},
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 1000) -> int:
        """Read what is there, apply it, commit; returns how many records were read."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        count = 0
        for records in batch.values():
            for record in records:
                event = json.loads(record.value)
                self.received.append(event)
                self.book.apply(event)
                count += 1
        if count:
            await self.consumer.commit()
        return count
