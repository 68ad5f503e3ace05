"""Outbox relay: publishes committed outbox records to Kafka, in order, and marks them sent.

One relay per service holds a lease (a MongoDB document) so that several replicas of a service
do not publish the same records or reorder one aggregate's events. The holder:

1. wakes up when a unit of work commits (in-process signal) or every poll interval,
2. reads pending records oldest first, publishes them all (aiokafka batches them; records to the
   same partition keep their order) and waits for the broker's acknowledgements,
3. marks them sent with one update.

If the process dies between 2 and 3, the records are still pending. Before publishing again, a
new lease holder scans the partitions those records would have gone to, from shortly before the
oldest pending record, for their event ids and marks the ones it finds as sent: a crash between
publish and mark does not put a second copy on the topic. (Consumers also deduplicate by event id
in their inbox, so even a copy that slipped through, e.g. from a zombie lease holder, has one effect.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.config import ServiceSettings
from shared.contracts.envelope import new_id, utcnow
from shared.faults import fail_point
from shared.messaging.outbox import OUTBOX
from shared.messaging.recovery import republish_for_new_broker
from shared.messaging.scan import header, scan
from shared.metrics import OLDEST_PENDING, OUTBOX_BACKLOG, OUTBOX_ERRORS, OUTBOX_PUBLISH, OUTBOX_PUBLISHED
from shared.mongo import Mongo

log = logging.getLogger(__name__)

LEASES = "leases"
LEASE_ID = "outbox-relay"
# Broker timestamps come from the relay's clock at publish time, which is after created_at;
# the margin covers clock differences between the writer and the relay.
RECOVERY_MARGIN = timedelta(seconds=60)


class OutboxRelay:
    def __init__(self, mongo: Mongo, broker: KafkaBroker, settings: ServiceSettings) -> None:
        self.mongo = mongo
        self.broker = broker
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
        self._wake = asyncio.Event()
        self._lease_until = 0.0  # monotonic deadline of the lease we hold; 0 when not holding
        self._last_cleanup = 0.0
        self.published = 0

    @property
    def outbox(self) -> Any:
        return self.mongo.db[OUTBOX]

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled."""
        poll = self.settings.outbox_poll_interval_ms / 1000
        while True:
            try:
                if await self._hold_lease():
                    while await self.drain_once() >= self.settings.outbox_batch_size:
                        pass
                    await self._cleanup()
            except asyncio.CancelledError:
                raise
            except Exception:
                OUTBOX_ERRORS.inc()
                log.exception("outbox relay iteration failed; retrying")
                self._lease_until = 0.0
                await asyncio.sleep(1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    # -- lease ----------------------------------------------------------------------------

    async def _hold_lease(self) -> bool:
        lease = self.settings.outbox_lease_seconds
        now = time.monotonic()
        if self._lease_until and now < self._lease_until - lease * 2 / 3:
            return True  # renewed recently enough
        was_holding = self._lease_until > now
        wall = utcnow()
        try:
            doc = await self.mongo.db[LEASES].find_one_and_update(
                {"_id": LEASE_ID, "$or": [{"owner": self.owner}, {"until": {"$lt": wall}}]},
                {"$set": {"owner": self.owner, "until": wall + timedelta(seconds=lease)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            doc = None  # another live holder: the upsert collided with its document
        if doc is None or doc.get("owner") != self.owner:
            self._lease_until = 0.0
            return False
        self._lease_until = now + lease
        if not was_holding:
            log.info("outbox relay %s holds the lease", self.owner)
            await republish_for_new_broker(self.mongo, self.settings)
            await self.recover()
        return True

    async def release(self) -> None:
        if self._lease_until:
            await self.mongo.db[LEASES].delete_one({"_id": LEASE_ID, "owner": self.owner})
            self._lease_until = 0.0

    # -- publishing -----------------------------------------------------------------------

    async def drain_once(self) -> int:
        """Publish one batch of pending records; returns how many."""
        docs = (
            await self.outbox.find({"pending": True})
            .sort([("ts", 1), ("seq", 1)])
            .limit(self.settings.outbox_batch_size)
            .to_list(None)
        )
        if not docs:
            return 0
        started = time.perf_counter()
        confirmations = []
        for doc in docs:
            # Publish under the trace context of the work that wrote the record.
            token = otel_context.attach(propagate.extract(doc.get("trace") or {}))
            try:
                confirmations.append(
                    await self.broker.publish(
                        bytes(doc["value"]),
                        doc["topic"],
                        key=doc["key"].encode(),
                        headers={
                            "content-type": "application/json",
                            "event_id": doc.get("event_id", doc["_id"]),  # a republished public event
                            "event_type": doc["type"],
                        },
                        no_confirm=True,
                    )
                )
            finally:
                otel_context.detach(token)
        await asyncio.gather(*confirmations)
        OUTBOX_PUBLISH.observe(time.perf_counter() - started)
        fail_point("relay.after-publish")
        await self._mark_sent([doc["_id"] for doc in docs])
        self.published += len(docs)
        for doc in docs:
            OUTBOX_PUBLISHED.labels(doc["topic"]).inc()
        return len(docs)

    async def measure_backlog(self) -> tuple[int, float | None]:
        """How many records wait to be published and when the oldest was written (unix
        seconds, None when none wait); kept in `kameng_outbox_backlog_records` and
        `kameng_outbox_oldest_pending_age_seconds`. Read from the database, so every replica
        reports the service's backlog whichever holds the lease."""
        count = await self.outbox.count_documents({"pending": True})
        oldest = await self.outbox.find_one({"pending": True}, {"ts": 1}, sort=[("ts", 1), ("seq", 1)])
        at = oldest["ts"] / 1e9 if oldest is not None else None
        OUTBOX_BACKLOG.set(count)
        OLDEST_PENDING.at = at
        return count, at

    async def _mark_sent(self, ids: list[str]) -> None:
        await self.outbox.update_many({"_id": {"$in": ids}}, {"$set": {"sent_at": utcnow()}, "$unset": {"pending": ""}})

    async def _cleanup(self) -> None:
        """Delete sent records past their retention (kept meanwhile for audit and debugging)."""
        now = time.monotonic()
        if now - self._last_cleanup < 600:
            return
        self._last_cleanup = now
        cutoff = utcnow() - timedelta(hours=self.settings.outbox_sent_retention_hours)
        await self.outbox.delete_many({"sent_at": {"$lt": cutoff}})

    # -- crash recovery -------------------------------------------------------------------

    async def recover(self) -> int:
        """Mark as sent the pending records a crashed holder had already published."""
        pending = await self.outbox.find({"pending": True}, {"_id": 1, "topic": 1, "ts": 1}).to_list(None)
        if not pending:
            return 0
        by_topic: dict[str, set[str]] = defaultdict(set)
        for doc in pending:
            by_topic[doc["topic"]].add(doc["_id"])
        since_ms = min(d["ts"] for d in pending) // 1_000_000 - int(RECOVERY_MARGIN.total_seconds() * 1000)
        found = await _find_published(self.settings.kafka_bootstrap_servers, by_topic, since_ms)
        if found:
            await self._mark_sent(sorted(found))
            log.warning("outbox recovery: %d record(s) were already on the broker", len(found))
        return len(found)


async def _find_published(bootstrap: str, wanted: dict[str, set[str]], since_ms: int) -> set[str]:
    """Event ids from `wanted` that are on their topics at or after about `since_ms`."""
    found: set[str] = set()
    for record in await scan(bootstrap, wanted, since_ms=since_ms):
        event_id = header(record, "event_id")
        if event_id is not None and event_id in wanted.get(record.topic, ()):
            found.add(event_id)
    return found
