"""Transactional outbox: a state change and the events it causes commit together or not at all.

Services never publish to Kafka directly. Inside `UnitOfWork.run(fn)` the function changes state
through `tx.session` and calls `tx.emit(event)`; the events are inserted into the service's
`outbox` collection in the same MongoDB transaction. The relay (`shared.messaging.relay`)
publishes them afterwards and marks them sent. An aborted transaction therefore publishes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from bson import Binary
from motor.motor_asyncio import AsyncIOMotorClientSession, AsyncIOMotorDatabase
from opentelemetry import propagate

from shared import context
from shared.contracts.envelope import Envelope, encode_envelope, new_id, utcnow
from shared.contracts.registry import Event, spec_for
from shared.mongo import Index, Mongo

log = logging.getLogger(__name__)

OUTBOX = "outbox"

OUTBOX_INDEXES = (
    # The relay reads pending records in write order.
    Index(OUTBOX, [("pending", 1), ("ts", 1), ("seq", 1)]),
    Index(OUTBOX, [("sent_at", 1)], {"sparse": True}),
)

T = TypeVar("T")


def build_envelope(
    payload: Event,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    spec = spec_for(type(payload))
    event_id = event_id or new_id()
    return Envelope(
        event_id=event_id,
        type=spec.type,
        version=spec.version,
        occurred_at=utcnow(),
        producer=producer,
        correlation_id=correlation_id or context.correlation_id.get() or event_id,
        causation_id=causation_id if causation_id is not None else context.causation_id.get(),
        key=payload.aggregate_key(),
        data=msgspec.Raw(msgspec.json.encode(payload)),
    )


class _Clock:
    """Nanosecond write stamps that never go backwards in this process.

    The relay publishes in (ts, seq) order. MongoDB dates keep only milliseconds, so events
    emitted together would tie; `seq` orders them within one transaction. Two transactions on
    the same aggregate are serialised by the database (write conflicts retry), so the later one
    stamps a later `ts` unless the writers' hosts' clocks disagree by more than the gap between
    the two writes (see docs/architecture.md, "Ordering").
    """

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


_clock = _Clock()


def current_trace() -> dict[str, str]:
    """The current trace context, as the headers that carry it (W3C traceparent...)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def outbox_record(
    envelope: Envelope, topic: str, *, ts: int, seq: int, trace: dict[str, str] | None = None
) -> dict[str, Any]:
    """The outbox document for one event. The trace context of the work that emitted it (`trace`,
    taken at `Tx.emit`; else the current one) is stored with it, so the relay's publish span
    (and the consumer's span after it) join the trace that caused it."""
    trace = current_trace() if trace is None else trace
    return {
        "_id": envelope.event_id,
        "topic": topic,
        "key": envelope.key,
        "type": envelope.type,
        "value": Binary(encode_envelope(envelope)),
        "trace": trace,
        "created_at": envelope.occurred_at,
        "ts": ts,
        "seq": seq,
        "pending": True,
    }


def public_record(
    *,
    event_id: str,
    topic: str,
    key: str,
    type_: str,
    value: bytes,
    ts: int,
    seq: int,
    record_id: str | None = None,
    trace: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An outbox document whose value is published as is, without our envelope: for public
    topics (the partner feed) whose schema outside systems depend on. The relay treats it like
    any record (same ordering, headers, crash recovery by `event_id`).

    `record_id` (default: the event id) lets the same event be published again, e.g. a partner
    feed replay: the record gets its own id and keeps `event_id` for the header. Crash recovery
    does not recognise such a copy on the topic, so after a crash between publish and mark it
    may go out twice (partners deduplicate on `event_id` anyway)."""
    trace = current_trace() if trace is None else trace
    extra = {"event_id": event_id} if record_id not in (None, event_id) else {}
    return {
        "_id": record_id or event_id,
        **extra,
        "topic": topic,
        "key": key,
        "type": type_,
        "value": Binary(value),
        "trace": trace,
        "created_at": utcnow(),
        "ts": ts,
        "seq": seq,
        "pending": True,
    }


@dataclass(frozen=True)
class PublicMessage:
    event_id: str
    topic: str
    key: str
    type: str
    value: bytes
    record_id: str | None = None
    trace: dict[str, str] | None = None


@dataclass
class Tx:
    """What a unit of work's function gets: the session to pass to every write, and emit()."""

    db: AsyncIOMotorDatabase[Any]
    session: AsyncIOMotorClientSession
    producer: str
    events: list[tuple[Envelope, str]] = field(default_factory=list)
    traces: list[dict[str, str]] = field(default_factory=list)
    """The trace context each of `events` was emitted under: a batch of consumed events commits
    together, and each emitted event must stay in the trace of the event that caused it."""
    public: list[PublicMessage] = field(default_factory=list)
    post_commit: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    deferred: dict[str, list[Any]] = field(default_factory=dict)
    """Collection name -> pymongo write operations, sent as one bulk write per collection when
    the function returns (`later`)."""
    memo: dict[Any, Any] = field(default_factory=dict)
    """What this transaction's functions wrote through `later` and may need to read back: a
    deferred write is not in the database yet, so a later handler of the same batch would not
    see it (e.g. the newest `at` projected for an order)."""

    def later(self, collection: str, operation: Any) -> None:
        """Write with this transaction, but in one bulk write per collection at its end (in the
        order given), instead of one command each: for blind writes (projections, notices) of a
        batch of events. Nothing in this transaction reads the document from the database
        before the end; keep what must be read back in `memo`."""
        self.deferred.setdefault(collection, []).append(operation)

    def after_commit(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run `action` once the transaction has committed (never if it aborts): for effects
        outside MongoDB that must follow the state, like releasing a Redis hold. Such effects
        must be idempotent and repairable, because the process may die before they run."""
        self.post_commit.append(action)

    def emit(self, payload: Event, *, event_id: str | None = None) -> Envelope:
        envelope = build_envelope(payload, producer=self.producer, event_id=event_id)
        self.events.append((envelope, spec_for(type(payload)).topic))
        self.traces.append(current_trace())
        return envelope

    def emit_public(
        self, *, topic: str, key: str, value: bytes, event_id: str, type_: str, record_id: str | None = None
    ) -> None:
        """Publish `value` to `topic` exactly as given (no envelope), with this transaction.
        `event_id` is the `event_id` header and, unless `record_id` is given (to publish an
        event again), the outbox id: either must be unique."""
        self.public.append(
            PublicMessage(
                event_id=event_id,
                topic=topic,
                key=key,
                type=type_,
                value=value,
                record_id=record_id,
                trace=current_trace(),
            )
        )


class UnitOfWork:
    """Runs a function in one MongoDB transaction and writes its events to the outbox with it.

    The transaction is retried on MongoDB's transient errors (pymongo's `with_transaction`), so
    `fn` must only touch the database through `tx.session` and must not have outside effects.
    """

    def __init__(self, mongo: Mongo, producer: str, on_commit: Callable[[], None] | None = None) -> None:
        self.mongo = mongo
        self.producer = producer
        self._on_commit = on_commit

    def set_on_commit(self, callback: Callable[[], None] | None) -> None:
        self._on_commit = callback

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        result: T
        wrote_events = False
        post_commit: list[Callable[[], Awaitable[Any]]] = []

        async with await self.mongo.client.start_session() as session:

            async def attempt(s: AsyncIOMotorClientSession) -> T:
                nonlocal wrote_events
                tx = Tx(db=self.mongo.db, session=s, producer=self.producer)
                value = await fn(tx)
                for collection, operations in tx.deferred.items():
                    await self.mongo.db[collection].bulk_write(operations, ordered=True, session=s)
                if tx.events or tx.public:
                    ts = _clock.now()
                    records = [
                        outbox_record(env, topic, ts=ts, seq=i, trace=trace)
                        for i, ((env, topic), trace) in enumerate(zip(tx.events, tx.traces, strict=True))
                    ]
                    records += [
                        public_record(
                            event_id=m.event_id,
                            topic=m.topic,
                            key=m.key,
                            type_=m.type,
                            value=m.value,
                            ts=ts,
                            seq=len(tx.events) + i,
                            record_id=m.record_id,
                            trace=m.trace,
                        )
                        for i, m in enumerate(tx.public)
                    ]
                    await self.mongo.db[OUTBOX].insert_many(records, session=s)
                wrote_events = bool(tx.events or tx.public)
                post_commit[:] = tx.post_commit  # only the attempt that committed counts
                return value

            result = await session.with_transaction(attempt)

        if wrote_events and self._on_commit is not None:
            self._on_commit()
        for action in post_commit:
            try:
                await action()
            except Exception:
                log.exception("after-commit action failed; the state is committed, repair will follow")
        return result
