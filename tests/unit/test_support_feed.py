"""The partner feed's use cases on in-memory fakes: each partner's events go to its own topic only,
the topic is opened by the first API key, replays are idempotent per request and republish the
same event ids once, and bad replay requests change nothing."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from pymongo.errors import DuplicateKeyError

from services.support.usecases import feed, orders
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.identity import ApiKeyCreated
from shared.contracts.order import OrderStatusChanged
from shared.errors import Problem
from shared.messaging.outbox import PublicMessage, Tx
from tests.unit.test_support_usecases import FakeFeedTopics, FakeStore, FakeUnitOfWork, make_deps


class FeedFakeStore(FakeStore):
    """FakeStore plus the feed's part of SupportStore."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds: dict[str, dict[str, Any]] = {}
        self.partner_events: dict[str, dict[str, Any]] = {}
        self.replays: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}

    async def project_order(self, order_id: str, fields: dict[str, Any], *, tx: Tx) -> None:
        self.orders[order_id] = {"_id": order_id, **fields}

    async def settle_urge(self, order_id: str, *, at: datetime, because: str, tx: Tx) -> None:
        pass

    async def webhooks_of(self, partner_user_id: str, *, tx: Tx | None = None) -> list[dict[str, Any]]:
        return [h for h in self.webhooks.values() if h["partner_user_id"] == partner_user_id]

    async def queue_deliveries(self, records: list[dict[str, Any]], *, tx: Tx) -> None:
        for r in records:
            self.deliveries[r["_id"]] = r

    async def open_feed(self, partner_user_id: str, fields: dict[str, Any], *, tx: Tx) -> None:
        self.feeds.setdefault(partner_user_id, {"_id": partner_user_id, **fields})

    async def feed_of(self, partner_user_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.feeds.get(partner_user_id))

    async def keep_partner_event(self, doc: dict[str, Any], *, tx: Tx) -> None:
        if doc["_id"] in self.partner_events:
            raise DuplicateKeyError("partner event")
        self.partner_events[doc["_id"]] = doc

    def _since(self, partner: str, since: datetime, after: int, upto: int) -> list[dict[str, Any]]:
        return sorted(
            (
                d
                for d in self.partner_events.values()
                if d["partner_user_id"] == partner and d["occurred_at"] >= since and after < d["stamp"] <= upto
            ),
            key=lambda d: d["stamp"],
        )

    async def count_partner_events(self, partner_user_id: str, *, since: datetime, upto: int) -> int:
        return len(self._since(partner_user_id, since, 0, upto))

    async def partner_events_after(
        self, partner_user_id: str, *, since: datetime, after: int, upto: int, limit: int
    ) -> list[dict[str, Any]]:
        return self._since(partner_user_id, since, after, upto)[:limit]

    async def replay(self, replay_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        return copy.deepcopy(self.replays.get(replay_id))

    async def add_replay(self, doc: dict[str, Any], *, tx: Tx) -> None:
        if doc["_id"] in self.replays:
            raise DuplicateKeyError("replay")
        self.replays[doc["_id"]] = copy.deepcopy(doc)

    async def claim_replay(self, *, now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        for r in sorted(self.replays.values(), key=lambda r: r["requested_at"]):
            if r["status"] != "done" and r["lease_until"] < now:
                r.update(status="running", lease_until=lease_until)
                return copy.deepcopy(r)
        return None

    async def advance_replay(
        self, replay_id: str, *, cursor: int, to: int, published: int, lease_until: datetime, tx: Tx
    ) -> bool:
        r = self.replays[replay_id]
        if r["cursor"] != cursor or r["status"] != "running":
            return False
        r.update(cursor=to, lease_until=lease_until, published=r["published"] + published)
        return True

    async def finish_replay(self, replay_id: str, *, at: datetime) -> None:
        if self.replays[replay_id]["status"] != "done":
            self.replays[replay_id].update(status="done", finished_at=at)


def world(**settings: Any) -> tuple[Any, FeedFakeStore, FakeUnitOfWork, FakeFeedTopics]:
    deps, store, uow = make_deps(store=FeedFakeStore(), **settings)
    return deps, cast(FeedFakeStore, store), uow, cast(FakeFeedTopics, deps.feed_topics)


def change(order_id: str, user_id: str, status: str, *, partner: bool = True) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        user_id=user_id,
        status=status,
        previous_status=None,
        sku_id="sku-1",
        quantity=1,
        total_cents=500,
        at=utcnow(),
        partner_key_id="ak_1" if partner else None,
    )


async def consume(deps: Any, uow: FakeUnitOfWork, event: OrderStatusChanged) -> str:
    event_id = new_id()

    async def fn(tx: Tx) -> None:
        await orders.follow_order(deps, tx, event, event_id=event_id, occurred_at=utcnow())

    await uow.run(fn)
    return event_id


def published(uow: FakeUnitOfWork) -> list[PublicMessage]:
    return cast(list[PublicMessage], uow.public)


async def test_the_first_api_key_opens_the_partners_topic_once() -> None:
    deps, store, uow, admin = world()
    for key in ("ak_1", "ak_2"):

        async def fn(tx: Tx, key: str = key) -> None:
            await orders.open_partner_feed(deps, tx, ApiKeyCreated(user_id="p1", key_id=key), at=utcnow())

        await uow.run(fn)
    assert admin.created == ["partner.p1.order-events.v1"]
    assert store.feeds["p1"]["first_key_id"] == "ak_1"
    assert await feed.feed_info(deps, "p1") == {
        "topic": "partner.p1.order-events.v1",
        "bootstrap_servers": deps.settings.kafka_bootstrap_servers,
        "consumer_group_prefix": "partner.p1.",
        "schema_url": "/api/v1/partner/feed/schema",
    }
    with pytest.raises(Problem) as no_feed:
        await feed.feed_info(deps, "buyer-without-key")
    assert no_feed.value.status_code == 404


async def test_each_partners_events_go_to_its_own_topic_only_and_buyers_to_none() -> None:
    deps, store, uow, admin = world()
    a = await consume(deps, uow, change("o1", "pa", "paid"))
    b = await consume(deps, uow, change("o2", "pb", "paid"))
    await consume(deps, uow, change("o3", "buyer", "paid", partner=False))
    by_topic = {(m.topic, m.event_id, m.key) for m in published(uow)}
    assert by_topic == {("partner.pa.order-events.v1", a, "o1"), ("partner.pb.order-events.v1", b, "o2")}
    assert set(admin.created) == {"partner.pa.order-events.v1", "partner.pb.order-events.v1"}
    assert set(store.partner_events) == {a, b}  # kept for replays; the buyer's order is not


async def test_a_replay_republishes_the_same_event_ids_once_per_request() -> None:
    deps, store, uow, _ = world()
    ids = [await consume(deps, uow, change("o1", "pa", s)) for s in ("pending_payment", "paid", "delivered")]
    await consume(deps, uow, change("o9", "pb", "paid"))  # another partner's: never in pa's replay
    uow.public.clear()
    since = utcnow() - timedelta(hours=1)
    first, new = await feed.request_replay(deps, "pa", since, key=None)
    again, new_again = await feed.request_replay(deps, "pa", since, key=None)
    assert new and not new_again and again["_id"] == first["_id"] and first["events"] == 3

    assert await feed.replay_due(deps) == 3
    assert await feed.replay_due(deps) == 0  # done: nothing more
    out = published(uow)
    assert [m.event_id for m in out] == ids  # in the original order, the original ids
    assert {m.topic for m in out} == {"partner.pa.order-events.v1"}
    assert len({m.record_id for m in out}) == 3 and all(m.record_id != m.event_id for m in out)
    assert store.replays[first["_id"]]["status"] == "done"

    # The same Idempotency-Key with another `since` is a reused key; a new key is a new replay.
    keyed, _ = await feed.request_replay(deps, "pa", since, key="k1")
    with pytest.raises(Problem) as reused:
        await feed.request_replay(deps, "pa", since - timedelta(minutes=1), key="k1")
    assert reused.value.slug == "idempotency-key-reused"
    assert keyed["_id"] != first["_id"]


@pytest.mark.parametrize("days_ago", [31, -1])
async def test_a_replay_beyond_30_days_or_in_the_future_is_422_and_records_nothing(days_ago: int) -> None:
    deps, store, uow, _ = world()
    await consume(deps, uow, change("o1", "pa", "paid"))
    with pytest.raises(Problem) as bad:
        await feed.request_replay(deps, "pa", utcnow() - timedelta(days=days_ago), key=None)
    assert bad.value.status_code == 422 and store.replays == {}


async def test_a_replay_taken_over_mid_way_publishes_each_event_once() -> None:
    deps, store, uow, _ = world(partner_replay_batch=2)
    for s in ("pending_payment", "paid", "delivering", "delivered"):
        await consume(deps, uow, change("o1", "pa", s))
    uow.public.clear()
    replay, _ = await feed.request_replay(deps, "pa", utcnow() - timedelta(hours=1), key=None)
    # a worker that moved the cursor after our read makes our batch lose: nothing emitted twice
    claimed = await store.claim_replay(now=utcnow(), lease_until=utcnow())
    assert claimed is not None
    batch = await store.partner_events_after("pa", since=claimed["since"], after=0, upto=claimed["upto"], limit=2)
    assert await feed._republish(deps, replay["_id"], 0, batch)
    assert not await feed._republish(deps, replay["_id"], 0, batch)  # stale cursor: refused
    store.replays[replay["_id"]]["lease_until"] = utcnow() - timedelta(seconds=1)  # that worker died
    assert await feed.replay_due(deps) == 2  # the rest, from its cursor
    assert len(published(uow)) == 4 and len({m.event_id for m in published(uow)}) == 4
