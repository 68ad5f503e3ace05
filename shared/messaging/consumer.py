"""Event consumers: decode, deduplicate, apply in a transaction, retry, dead-letter.

A service declares handlers on an `EventRouter`:

    router = EventRouter("wallet")

    @router.handles(UserRegistered)
    async def open_account(event: UserRegistered, ctx: HandlerContext) -> None:
        await ctx.tx.db.accounts.insert_one({...}, session=ctx.tx.session)
        ctx.tx.emit(AccountOpened(...))

Delivery is at-least-once: the offset is committed only after the handler's transaction (state +
inbox + outbox) has committed. The effect is exactly once because the inbox insert in that
transaction fails for an event id seen before.

Records a poll returns together are applied in one transaction (one inbox insert, every
handler's effects, one outbox insert; `CONSUMER_BATCH_MAX_RECORDS`, Decision 31). If anything in
that transaction fails, none of it commits and the batch is applied again one transaction per
event, so the policy below holds per message exactly as without batching.

Failure policy, per message:
- cannot be decoded, unknown type/version, invalid payload, or `RejectEvent` raised:
  dead-letter topic at once, with the reason (retrying cannot help);
- infrastructure unreachable (MongoDB, Redis, network): retried with backoff and never
  dead-lettered; after a while the message is nacked so it is redelivered, not skipped;
- any other exception: retried `consumer_max_attempts` times with backoff, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import context
from shared.config import ServiceSettings
from shared.contracts import topics
from shared.contracts.envelope import Envelope, utcnow
from shared.contracts.registry import Event, MalformedEvent, decode, lookup, spec_for
from shared.faults import fail_point
from shared.messaging.batching import batches_enabled, plan
from shared.messaging.inbox import AlreadyProcessed, claim, claim_many, inbox_id
from shared.messaging.outbox import Tx, UnitOfWork
from shared.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_DEAD_LETTERED,
    CONSUMER_DUPLICATES,
    CONSUMER_HANDLING,
    CONSUMER_RETRIES,
)
from shared.runtime import Runtime

log = logging.getLogger(__name__)
_meter = metrics.get_meter("kameng.consumer")
_tracer = trace.get_tracer("kameng.consumer")
_processed = _meter.create_counter("kameng.consumer.processed", description="events applied")
_duplicates = _meter.create_counter("kameng.consumer.duplicates", description="redeliveries skipped")
_dead_lettered = _meter.create_counter("kameng.consumer.dead_lettered", description="events sent to a DLQ")

E = TypeVar("E", bound=Event)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
# After this long failing on infrastructure, give the message back to Kafka (nack) so the
# consumer's poll loop and group membership stay healthy; it is redelivered, never skipped.
INFRA_RETRY_WINDOW_SECONDS = 60.0


class RejectEvent(Exception):
    """Raised by a handler for an event that can never be applied: dead-lettered with the reason."""


@dataclass
class HandlerContext:
    envelope: Envelope
    tx: Tx
    runtime: Runtime | None = None
    """The service's runtime; None in bare tests."""

    @property
    def deps(self) -> Any:
        """The service's typed Deps (`ServiceSpec.deps`); each service narrows it with its own
        accessor (e.g. `deps_of(ctx)`)."""
        return self.runtime.deps if self.runtime is not None else None


Handler = Callable[[Any, HandlerContext], Awaitable[None]]


@dataclass(frozen=True)
class _Registration:
    name: str
    fn: Handler
    when: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class _Item:
    """One decoded record for one of the handlers that wants it."""

    registration: _Registration
    envelope: Envelope
    payload: Event
    raw: Any

    @property
    def inbox_id(self) -> str:
        return inbox_id(self.registration.name, self.envelope)


class EventRouter:
    def __init__(self, service: str) -> None:
        self.service = service
        self._handlers: dict[tuple[str, int], list[_Registration]] = defaultdict(list)
        self._topics: set[str] = set()

    def handles(
        self, *models: type[Event], when: Callable[[Any], bool] | None = None
    ) -> Callable[[Callable[[E, HandlerContext], Awaitable[None]]], Any]:
        """Register a handler. `when` filters events before any database work: an event it
        rejects is acknowledged without a transaction (e.g. only `cancelled` status changes)."""

        def register(fn: Callable[[E, HandlerContext], Awaitable[None]]) -> Any:
            for model in models:
                spec = spec_for(model)
                self._handlers[(spec.type, spec.version)].append(
                    _Registration(name=f"{self.service}.{fn.__name__}", fn=fn, when=when)  # type: ignore[arg-type]
                )
                self._topics.add(spec.topic)
            return fn

        return register

    def include(self, other: EventRouter) -> None:
        for key, regs in other._handlers.items():
            self._handlers[key].extend(regs)
        self._topics |= other._topics

    @property
    def topics(self) -> set[str]:
        return set(self._topics)

    def handlers_for(self, envelope: Envelope) -> list[_Registration]:
        return self._handlers.get((envelope.type, envelope.version), [])

    def subscribe(
        self, broker: KafkaBroker, uow: UnitOfWork, settings: ServiceSettings, runtime: Runtime | None = None
    ) -> Dispatcher:
        """Create the FastStream subscribers: per topic, `kafka_consumer_concurrency` consumers of
        the service's consumer group (Kafka spreads the partitions across them)."""
        dispatcher = Dispatcher(self, broker, uow, settings, runtime)
        batch = batches_enabled(settings.consumer_batch_max_records)
        for topic in sorted(self._topics):
            for _ in range(max(1, settings.kafka_consumer_concurrency)):

                async def on_message(message: KafkaMessage) -> None:
                    await dispatcher.dispatch(message)

                # With NACK_ON_ERROR a batch is committed (all its records) after dispatch
                # returns, and a nack rewinds each partition to the batch's first record there.
                broker.subscriber(
                    topic,
                    batch=batch,
                    max_records=settings.consumer_batch_max_records if batch else None,
                    batch_timeout_ms=settings.consumer_batch_timeout_ms,
                    group_id=consumer_group(settings.service_name, topic),
                    ack_policy=AckPolicy.NACK_ON_ERROR,
                    auto_offset_reset="earliest",
                    session_timeout_ms=settings.kafka_session_timeout_ms,
                    heartbeat_interval_ms=settings.kafka_session_timeout_ms // 3,
                    rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
                    title=f"{settings.service_name}:{topic}",
                )(on_message)
        return dispatcher


def consumer_group(service: str, topic: str) -> str:
    """One consumer group per (service, topic): members of a group all read the same topic, so a
    service that restarts rejoins groups whose rebalance involves only that topic's consumers
    (tansu, the embedded broker, can stall a group whose members subscribe to different topics)."""
    return f"{service}.{topic}"


class Dispatcher:
    def __init__(
        self,
        router: EventRouter,
        broker: KafkaBroker,
        uow: UnitOfWork,
        settings: ServiceSettings,
        runtime: Runtime | None = None,
    ) -> None:
        self.runtime = runtime
        self.router = router
        self.broker = broker
        self.uow = uow
        self.settings = settings
        self._zero_series()

    def _zero_series(self) -> None:
        """Create every handler's failure series at 0, so the first retry or dead letter after a
        start is an increase Prometheus sees (a series born at 1 shows no increase)."""
        for (type_, version), registrations in self.router._handlers.items():
            spec = lookup(type_, version)
            for registration in registrations:
                CONSUMER_DUPLICATES.labels(registration.name)
                for reason in ("infrastructure", "error"):
                    CONSUMER_RETRIES.labels(registration.name, reason)
                if spec is not None:
                    CONSUMER_DEAD_LETTERED.labels(spec.topic, registration.name)
        for topic in self.router.topics:
            CONSUMER_DEAD_LETTERED.labels(topic, "none")

    async def dispatch(self, message: Any) -> None:
        """One polled record, or a batch of them (`raw_message` is then a tuple of records)."""
        raw = message.raw_message
        batched = isinstance(raw, tuple)
        items = await self._decode(raw if batched else (raw,))
        if len(items) > 1:
            try:
                await self._apply_together(items)
                return
            except Exception as exc:
                # Nothing of the batch committed: apply it again one event per transaction, so
                # retries, dead letters and duplicates are decided per message as before.
                log.warning("batch of %d events failed together, applying them one by one: %r", len(items), exc)
        for item in items:
            await self._apply_item(item, own_span=batched)

    async def _decode(self, records: tuple[Any, ...]) -> list[_Item]:
        """The (record, handler) pairs to apply, in arrival order; undecodable records are
        dead-lettered here and events no handler wants (or its `when` rejects) are dropped."""
        items: list[_Item] = []
        for raw in records:
            try:
                envelope, payload = decode(raw.value or b"")
            except MalformedEvent as exc:
                await self.dead_letter(raw, str(exc), handler=None, attempts=1)
                continue
            for registration in self.router.handlers_for(envelope):
                if registration.when is None or registration.when(payload):
                    items.append(_Item(registration, envelope, payload, raw))
        return items

    async def _apply_item(self, item: _Item, *, own_span: bool = False) -> None:
        """One event in its own transaction(s). `own_span`: it came in a batch, whose span
        FastStream made for the poll, so the event gets a span of its own (`_event_span`)."""
        span = _event_span(item) if own_span else contextlib.nullcontext()
        with _event_context(item.envelope), span:
            started = time.perf_counter()
            try:
                await self._apply_with_retries(item.registration, item.envelope, item.payload, item.raw)
            finally:
                CONSUMER_HANDLING.labels(item.registration.name).observe(time.perf_counter() - started)

    async def _apply_together(self, items: list[_Item]) -> None:
        """All of `items` in one transaction: one inbox read and insert, the handlers in arrival
        order (one aggregate's events keep their order), one outbox insert (UnitOfWork). Raises
        if any of it fails; then nothing committed."""
        outcome: dict[str, list[_Item]] = {}
        durations: dict[str, float] = {}

        async def work(tx: Tx) -> None:
            outcome.clear()
            durations.clear()
            fresh = await claim_many(tx.db, tx.session, [(i.registration.name, i.envelope) for i in items])
            planned = plan(items, [i.inbox_id for i in items], fresh)
            for item in planned.apply:
                with _event_context(item.envelope), _event_span(item):
                    started = time.perf_counter()
                    await item.registration.fn(
                        item.payload, HandlerContext(envelope=item.envelope, tx=tx, runtime=self.runtime)
                    )
                    durations[item.inbox_id] = time.perf_counter() - started
            outcome["applied"], outcome["duplicates"] = planned.apply, planned.duplicates

        await self.uow.run(work)
        # Dying here (effects committed, offsets not) must not apply the events twice.
        fail_point("consumer.after-apply")
        for item in outcome["applied"]:
            _processed.add(1, {"handler": item.registration.name, "type": item.envelope.type})
            CONSUMER_APPLIED.labels(item.registration.name, item.envelope.type).inc()
            CONSUMER_HANDLING.labels(item.registration.name).observe(durations.get(item.inbox_id, 0.0))
        for item in outcome["duplicates"]:
            self._count_duplicate(item.registration, item.envelope)

    def _count_duplicate(self, registration: _Registration, envelope: Envelope) -> None:
        _duplicates.add(1, {"handler": registration.name})
        CONSUMER_DUPLICATES.labels(registration.name).inc()
        log.info("skip duplicate event %s (%s) in %s", envelope.event_id, envelope.type, registration.name)

    async def _apply_with_retries(
        self, registration: _Registration, envelope: Envelope, payload: Event, raw: Any
    ) -> None:
        attempt = 0
        infra_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            attempt += 1
            try:
                await self._apply_once(registration, envelope, payload)
                return
            except AlreadyProcessed:
                self._count_duplicate(registration, envelope)
                return
            except RejectEvent as exc:
                await self.dead_letter(raw, f"rejected: {exc}", handler=registration.name, attempts=attempt)
                return
            except Exception as exc:
                if _is_infrastructure(exc):
                    infra_since = infra_since or loop.time()
                    if loop.time() - infra_since > INFRA_RETRY_WINDOW_SECONDS:
                        raise  # nack: the message is redelivered
                    log.warning("infrastructure error in %s, retrying: %r", registration.name, exc)
                    CONSUMER_RETRIES.labels(registration.name, "infrastructure").inc()
                elif attempt >= self.settings.consumer_max_attempts:
                    reason = f"{type(exc).__name__}: {exc}"
                    log.error(
                        "giving up on event %s in %s after %d attempts: %s",
                        envelope.event_id,
                        registration.name,
                        attempt,
                        reason,
                    )
                    await self.dead_letter(
                        raw,
                        reason,
                        handler=registration.name,
                        attempts=attempt,
                        detail=traceback.format_exc(limit=5),
                    )
                    return
                else:
                    log.warning("handler %s failed (attempt %d): %r", registration.name, attempt, exc)
                    CONSUMER_RETRIES.labels(registration.name, "error").inc()
                await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        ms = min(
            self.settings.consumer_backoff_initial_ms * 2 ** (attempt - 1),
            self.settings.consumer_backoff_max_ms,
        )
        return float(ms) / 1000

    async def _apply_once(self, registration: _Registration, envelope: Envelope, payload: Event) -> None:
        async def work(tx: Tx) -> None:
            await claim(tx.db, tx.session, registration.name, envelope)
            await registration.fn(payload, HandlerContext(envelope=envelope, tx=tx, runtime=self.runtime))

        await self.uow.run(work)
        # Dying here (effect committed, offset not) must not apply the event twice.
        fail_point("consumer.after-apply")
        _processed.add(1, {"handler": registration.name, "type": envelope.type})
        CONSUMER_APPLIED.labels(registration.name, envelope.type).inc()

    async def dead_letter(self, raw: Any, reason: str, *, handler: str | None, attempts: int, detail: str = "") -> None:
        """Publish the original message, untouched, to `<topic>.dlq` with why it failed."""
        headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in raw.headers or ()}
        headers.update(
            {
                "dlq_reason": reason[:1000],
                "dlq_detail": detail[:4000],
                "dlq_source_topic": raw.topic,
                "dlq_source_partition": str(raw.partition),
                "dlq_source_offset": str(raw.offset),
                "dlq_consumer_group": consumer_group(self.settings.service_name, raw.topic),
                "dlq_handler": handler or "",
                "dlq_attempts": str(attempts),
                "dlq_failed_at": utcnow().isoformat(),
            }
        )
        await self.broker.publish(raw.value or b"", topics.dlq(raw.topic), key=raw.key, headers=headers)
        _dead_lettered.add(1, {"topic": raw.topic})
        CONSUMER_DEAD_LETTERED.labels(raw.topic, handler or "none").inc()
        log.error("dead-lettered %s[%s]@%s: %s", raw.topic, raw.partition, raw.offset, reason)


@contextlib.contextmanager
def _event_context(envelope: Envelope) -> Iterator[None]:
    """Events a handler emits are caused by `envelope` and keep its correlation id."""
    cid_token = context.correlation_id.set(envelope.correlation_id)
    cause_token = context.causation_id.set(envelope.event_id)
    try:
        yield
    finally:
        context.correlation_id.reset(cid_token)
        context.causation_id.reset(cause_token)


@contextlib.contextmanager
def _event_span(item: _Item) -> Iterator[None]:
    """A CONSUMER span for one event applied in a batch, the child of the producer's span whose
    context the record carries in its headers. FastStream's own span covers a batch's poll, not
    each of its messages, so without this a trace would end at the bus; and what the handler
    emits is recorded under this span (`Tx.emit`), so the trace goes on downstream."""
    raw = item.raw
    carrier = {
        name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in (getattr(raw, "headers", None) or ())
    }
    topic = getattr(raw, "topic", "")
    with _tracer.start_as_current_span(
        f"{topic} process",
        context=propagate.extract(carrier),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.message.id": item.envelope.event_id,
            "kameng.handler": item.registration.name,
        },
    ):
        yield


def _is_infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return True
    return isinstance(exc, OperationFailure | PyMongoError) and exc.has_error_label("TransientTransactionError")
