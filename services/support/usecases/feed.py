"""The partner feed: a Kafka topic per partner account (`partner.{partner_user_id}.order-events.v1`),
opened when the partner's first API key is created, the public events written to it, what a
partner is told about it, and replays.

Every public event goes to its partner's own topic only, through support's outbox in the
transaction that consumed the order change, and is kept (`partner_events`, 31 days) so a replay
can publish it again with the same `event_id`. A replay is recorded by the request and worked off
by the `feed_replayer` loop in batches, each batch one transaction (cursor move + outbox
records), so a replay is published once even across crashes and replicas.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from pymongo.errors import DuplicateKeyError

from services.support import domain
from services.support.deps import SupportDeps
from services.support.domain import ReplayStatus
from shared.contracts import topics
from shared.contracts.envelope import utcnow
from shared.contracts.support import PARTNER_EVENT_TYPE, PartnerOrderEvent
from shared.errors import Problem, validation_problem
from shared.idempotency import derived_id, fingerprint, key_reused
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

REPLAY_LEASE = timedelta(seconds=30)
"""A replay worker that stops renewing this long is presumed dead; another takes over."""


class _Stamps:
    """Publish-order stamps for kept events: nanoseconds, never going backwards in a process.
    One order's changes are consumed one after another (one partition), so they stamp in order."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


_stamps = _Stamps()


async def open_feed(deps: SupportDeps, tx: Tx, partner_user_id: str, *, key_id: str | None, at: datetime) -> str:
    """The partner's topic exists and is recorded (idempotent): on its first API key, and, should
    an order event come first, on that. Returns the topic name."""
    topic = topics.partner_topic(partner_user_id)
    # Before the commit: the outbox record of a first event must never find its topic missing.
    await deps.feed_topics.ensure(topic)
    await deps.store.open_feed(partner_user_id, {"topic": topic, "created_at": at, "first_key_id": key_id}, tx=tx)
    return topic


async def publish_partner_event(deps: SupportDeps, tx: Tx, public: PartnerOrderEvent, value: bytes) -> None:
    """Write the public event to its partner's own topic (support's outbox, this transaction) and
    keep it for replays."""
    topic = await open_feed(deps, tx, public.partner_user_id, key_id=None, at=public.occurred_at)
    tx.emit_public(topic=topic, key=public.order_id, value=value, event_id=public.event_id, type_=PARTNER_EVENT_TYPE)
    await deps.store.keep_partner_event(
        {
            "_id": public.event_id,
            "partner_user_id": public.partner_user_id,
            "order_id": public.order_id,
            "topic": topic,
            "occurred_at": public.occurred_at,
            "stamp": _stamps.next(),
            "value": Binary(value),
            "kept_at": utcnow(),
        },
        tx=tx,
    )


async def feed_info(deps: SupportDeps, partner_user_id: str) -> dict[str, str]:
    """Where the partner reads its events. 404 until the account has an API key."""
    feed = await deps.store.feed_of(partner_user_id)
    if feed is None:
        raise Problem(404, "no-partner-feed", "Not Found", "the account has no partner feed yet: create an API key")
    settings = deps.settings
    return {
        "topic": feed["topic"],
        "bootstrap_servers": settings.partner_feed_bootstrap_servers or settings.kafka_bootstrap_servers,
        "consumer_group_prefix": topics.partner_group_prefix(partner_user_id),
        "schema_url": settings.partner_feed_schema_url,
    }


async def request_replay(
    deps: SupportDeps, partner_user_id: str, since: datetime, *, key: str | None
) -> tuple[dict[str, Any], bool]:
    """Record a replay of the partner's events since `since` (at most `partner_replay_max_days`
    back). Idempotent per request: the replay's id comes from the Idempotency-Key, or without one
    from `since`, so the same request twice is one replay. Returns (the replay, whether new)."""
    now = utcnow()
    errors = domain.check_replay_since(since, now, max_days=deps.settings.partner_replay_max_days)
    if errors and errors[0]["message"] == domain.NO_OFFSET:
        raise validation_problem(errors)
    if errors:
        # Its own slug: a well-formed time outside the window relative to now (no schema states it).
        raise Problem(422, "outside-replay-window", "Outside the replay window", errors[0]["message"], errors=errors)
    if await deps.store.feed_of(partner_user_id) is None:
        raise Problem(404, "no-partner-feed", "Not Found", "the account has no partner feed yet: create an API key")
    fp = fingerprint({"since": since.isoformat()})
    replay_id = derived_id("feed-replay", partner_user_id, key if key is not None else f"since:{since.isoformat()}")

    earlier = await deps.store.replay(replay_id)
    if earlier is not None:
        return _same_request(earlier, partner_user_id, fp), False
    upto = _stamps.next()  # events kept after the request are live ones, not the replay's
    doc = {
        "_id": replay_id,
        "partner_user_id": partner_user_id,
        "since": since,
        "fingerprint": fp,
        "status": ReplayStatus.QUEUED.value,
        "events": await deps.store.count_partner_events(partner_user_id, since=since, upto=upto),
        "published": 0,
        "cursor": 0,
        "upto": upto,
        "requested_at": now,
        "lease_until": now,
    }

    async def write(tx: Tx) -> None:
        await deps.store.add_replay(doc, tx=tx)

    try:
        await deps.uow.run(write)
    except DuplicateKeyError:  # a concurrent twin of this request won
        earlier = await deps.store.replay(replay_id)
        if earlier is None:
            raise
        return _same_request(earlier, partner_user_id, fp), False
    return doc, True


def _same_request(replay: dict[str, Any], partner_user_id: str, fp: str) -> dict[str, Any]:
    if replay["partner_user_id"] != partner_user_id or replay["fingerprint"] != fp:
        raise key_reused()
    return replay


async def replay_of(deps: SupportDeps, partner_user_id: str, replay_id: str) -> dict[str, Any]:
    replay = await deps.store.replay(replay_id)
    if replay is None or replay["partner_user_id"] != partner_user_id:
        raise Problem(404, "not-found", "Not Found", "replay not found")
    return replay


# -- the replay loop -------------------------------------------------------------------------------


async def replay_due(deps: SupportDeps) -> int:
    """Work off one replay, batch by batch; returns how many events it published (0: none due)."""
    now = utcnow()
    replay = await deps.store.claim_replay(now=now, lease_until=now + REPLAY_LEASE)
    if replay is None:
        return 0
    published = 0
    cursor = int(replay["cursor"])
    while True:
        batch = await deps.store.partner_events_after(
            replay["partner_user_id"],
            since=replay["since"],
            after=cursor,
            upto=int(replay["upto"]),
            limit=deps.settings.partner_replay_batch,
        )
        if not batch:
            await deps.store.finish_replay(replay["_id"], at=utcnow())
            log.info("partner feed replay %s done: %d event(s)", replay["_id"], published)
            return published
        if not await _republish(deps, replay["_id"], cursor, batch):
            return published  # another worker took it over
        cursor = int(batch[-1]["stamp"])
        published += len(batch)


async def _republish(deps: SupportDeps, replay_id: str, cursor: int, batch: list[dict[str, Any]]) -> bool:
    """One batch in one transaction: the cursor moves and the outbox gets the batch, or neither."""

    async def write(tx: Tx) -> bool:
        moved = await deps.store.advance_replay(
            replay_id,
            cursor=cursor,
            to=int(batch[-1]["stamp"]),
            published=len(batch),
            lease_until=utcnow() + REPLAY_LEASE,
            tx=tx,
        )
        if not moved:
            return False
        for doc in batch:
            tx.emit_public(
                topic=doc["topic"],
                key=doc["order_id"],
                value=bytes(doc["value"]),
                event_id=doc["_id"],
                type_=PARTNER_EVENT_TYPE,
                record_id=f"replay:{replay_id}:{doc['_id']}",
            )
        return True

    return await deps.uow.run(write)


async def replay_forever(deps: SupportDeps) -> None:
    poll = deps.settings.partner_replay_poll_interval_ms / 1000
    while True:
        try:
            if await replay_due(deps):
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partner feed replay failed; retrying")
        await asyncio.sleep(poll)
