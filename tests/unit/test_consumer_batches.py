"""Batched consumer transactions (Decision 31): the records of one poll are applied in one
transaction; duplicates are skipped, one failing event does not lose the others, and one
aggregate's events keep their order."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from shared.config import ServiceSettings
from shared.contracts.envelope import Envelope, encode_envelope
from shared.contracts.platform import Canary
from shared.messaging import consumer as consumer_module
from shared.messaging.batching import batches_enabled, plan
from shared.messaging.consumer import Dispatcher, EventRouter, HandlerContext
from shared.messaging.inbox import AlreadyProcessed
from shared.messaging.outbox import build_envelope

# -- the pure rule -------------------------------------------------------------------------


def test_plan_applies_each_fresh_id_once_in_arrival_order() -> None:
    planned = plan(["a1", "b1", "a1-again", "c1", "a2"], ["a1", "b1", "a1", "c1", "a2"], fresh={"a1", "c1", "a2"})
    assert planned.apply == ["a1", "c1", "a2"]
    assert planned.duplicates == ["b1", "a1-again"]  # b1 seen before; a1 twice in the batch


def test_one_record_per_poll_is_the_old_shape() -> None:
    assert not batches_enabled(1)
    assert batches_enabled(2)


# -- the dispatcher against a fake transactional store -----------------------------------


@dataclass
class Store:
    inbox: set[str] = field(default_factory=set)
    effects: list[str] = field(default_factory=list)
    commits: int = 0


@dataclass
class FakeUow:
    """Inbox rows and effects count only when the whole function returns, as in a MongoDB
    transaction; `commits` counts transactions that committed."""

    store: Store = field(default_factory=Store)

    async def run(self, fn: Any) -> Any:
        pending = SimpleNamespace(inbox=[], effects=[])
        result = await fn(SimpleNamespace(db=self.store, session=pending))
        self.store.inbox.update(pending.inbox)
        self.store.effects.extend(pending.effects)
        self.store.commits += 1
        return result


async def fake_claim(db: Store, session: Any, handler: str, envelope: Envelope) -> None:
    key = f"{handler}:{envelope.event_id}"
    if key in db.inbox:
        raise AlreadyProcessed(envelope.event_id)
    session.inbox.append(key)


async def fake_claim_many(db: Store, session: Any, claims: list[tuple[str, Envelope]]) -> set[str]:
    fresh: list[str] = []
    for handler, envelope in claims:
        key = f"{handler}:{envelope.event_id}"
        if key not in db.inbox and key not in fresh:
            fresh.append(key)
    session.inbox.extend(fresh)
    return set(fresh)


@dataclass
class FakeBroker:
    published: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, body: bytes, topic: str, **_: Any) -> None:
        self.published.append((topic, body))


def record(envelope: Envelope, offset: int = 0) -> Any:
    return SimpleNamespace(
        topic="platform.events", partition=0, offset=offset, key=b"k", value=encode_envelope(envelope), headers=[]
    )


def batch(*envelopes: Envelope) -> Any:
    raws = tuple(record(e, i) for i, e in enumerate(envelopes))
    return SimpleNamespace(raw_message=raws, body=[r.value for r in raws])


def canary(canary_id: str, note: str = "") -> Envelope:
    return build_envelope(Canary(canary_id=canary_id, origin="x", note=note), producer="elsewhere")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[Dispatcher, FakeUow, FakeBroker]:
    monkeypatch.setattr(consumer_module, "claim", fake_claim)
    monkeypatch.setattr(consumer_module, "claim_many", fake_claim_many)
    router = EventRouter("btest")

    @router.handles(Canary)
    async def on_canary(event: Canary, ctx: HandlerContext) -> None:
        if event.note == "broken":
            raise ValueError("always fails")
        ctx.tx.session.effects.append(event.canary_id)

    uow, broker = FakeUow(), FakeBroker()
    settings = ServiceSettings(consumer_max_attempts=2, consumer_backoff_initial_ms=1, consumer_backoff_max_ms=1)
    return Dispatcher(router, broker, uow, settings), uow, broker  # type: ignore[arg-type]


async def test_a_batch_commits_once_and_skips_duplicates_inside_it_and_from_before(
    fakes: tuple[Dispatcher, FakeUow, FakeBroker],
) -> None:
    dispatcher, uow, broker = fakes
    earlier = canary("c0")
    await dispatcher.dispatch(batch(earlier))  # a batch of one: its own transaction
    assert uow.store.commits == 1

    c1, c2 = canary("c1"), canary("c2")
    await dispatcher.dispatch(batch(c1, earlier, c1, c2, c2))
    assert uow.store.effects == ["c0", "c1", "c2"]  # each applied once
    assert uow.store.commits == 2  # the five records took one transaction
    assert broker.published == []


async def test_one_failing_event_falls_back_to_one_transaction_each_and_loses_nothing(
    fakes: tuple[Dispatcher, FakeUow, FakeBroker],
) -> None:
    dispatcher, uow, broker = fakes
    c1, bad, c3 = canary("c1"), canary("c2", note="broken"), canary("c3")
    await dispatcher.dispatch(batch(c1, bad, c3))
    assert uow.store.effects == ["c1", "c3"]  # the batch transaction left nothing behind
    assert uow.store.commits == 2  # then c1 and c3 in their own transactions
    assert [topic for topic, _ in broker.published] == ["platform.events.dlq"]  # only the bad one
    assert f"btest.on_canary:{bad.event_id}" not in uow.store.inbox

    await dispatcher.dispatch(batch(c1, c3))  # redelivered after the fallback: nothing twice
    assert uow.store.effects == ["c1", "c3"]


async def test_one_aggregates_events_keep_their_order_batched_and_in_the_fallback(
    fakes: tuple[Dispatcher, FakeUow, FakeBroker],
) -> None:
    dispatcher, uow, _ = fakes
    # The key is the canary id: "a" events are one aggregate's, in publish order.
    a = [build_envelope(Canary(canary_id="a", origin=str(i)), producer="x") for i in range(3)]
    b = [build_envelope(Canary(canary_id="b", origin=str(i)), producer="x") for i in range(2)]
    seen: list[tuple[str, str]] = []
    router = EventRouter("otest")

    @router.handles(Canary)
    async def follow(event: Canary, ctx: HandlerContext) -> None:
        if event.note == "broken":
            raise ValueError("always fails")
        seen.append((event.canary_id, event.origin))
        ctx.tx.session.effects.append(f"{event.canary_id}{event.origin}")

    dispatcher.router = router
    await dispatcher.dispatch(batch(a[0], b[0], a[1], b[1], a[2]))
    assert [o for k, o in seen if k == "a"] == ["0", "1", "2"]
    assert [o for k, o in seen if k == "b"] == ["0", "1"]

    seen.clear()
    later = [build_envelope(Canary(canary_id="a", origin=str(i)), producer="x") for i in range(3, 6)]
    await dispatcher.dispatch(batch(later[0], canary("z", note="broken"), later[1], later[2]))
    # Applied again one by one after the failure: still in order, each once.
    assert [o for k, o in seen if k == "a"] == ["3", "3", "4", "5"]  # 3 ran in the aborted batch, then committed once
    assert uow.store.effects[-3:] == ["a3", "a4", "a5"]


def test_subscribers_poll_batches_only_when_enabled() -> None:
    calls: list[dict[str, Any]] = []

    class RecordingBroker:
        def subscriber(self, topic: str, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return lambda fn: fn

    router = EventRouter("stest")

    @router.handles(Canary)
    async def noop(event: Canary, ctx: HandlerContext) -> None:
        return None

    for max_records in (1, 25):
        settings = ServiceSettings(consumer_batch_max_records=max_records)
        router.subscribe(RecordingBroker(), None, settings)  # type: ignore[arg-type]
    assert (calls[0]["batch"], calls[0]["max_records"]) == (False, None)
    assert (calls[1]["batch"], calls[1]["max_records"]) == (True, 25)
