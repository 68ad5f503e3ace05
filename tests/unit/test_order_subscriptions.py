"""Scheduled orders (自动充值): the calendar rule, and the scheduler's run with in-memory fakes:
exactly one order per run when two schedulers run it or one crashes between placing and
recording, and a failed run is recorded and announced once."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from services.order.domain import next_run_at, schedule_errors
from services.order.schemas import SubscriptionIn
from services.order.usecases import subscriptions
from shared.auth import Caller
from shared.contracts.order import SubscriptionRunFailed
from shared.messaging.outbox import Tx
from tests.unit.test_order_usecases import PRICE, FakeStore, World


class SubscriptionStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.subs: dict[str, dict[str, Any]] = {}

    async def add_subscription(self, doc: dict[str, Any]) -> None:
        assert doc["_id"] not in self.subs
        self.subs[doc["_id"]] = copy.deepcopy(doc)

    async def own_subscription(self, user_id: str, subscription_id: str) -> dict[str, Any] | None:
        doc = self.subs.get(subscription_id)
        return copy.deepcopy(doc) if doc and doc["user_id"] == user_id else None

    async def active_subscriptions(self, user_id: str) -> int:
        return sum(1 for d in self.subs.values() if d["user_id"] == user_id and d["status"] == "active")

    async def finish_run(
        self, tx: Tx, subscription_id: str, run: int, entry: dict[str, Any], next_at: datetime
    ) -> bool:
        doc = self.subs[subscription_id]
        if doc["run"] != run:
            return False
        doc.update(run=run + 1, next_run_at=next_at, last_run=entry, runs=[*doc["runs"], entry])
        doc["failures"] += entry["outcome"] != "ok"
        return True

    async def look_again(self, subscription_id: str, run: int, at: datetime) -> None:
        self.subs[subscription_id]["lease_until"] = at


def world() -> World:
    w = World()
    w.store = w.deps.store = w.uow.store = SubscriptionStore()  # type: ignore[misc]
    w.deps.skus.load = w.store.sku
    return w


CST = 8


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_the_calendar_rule() -> None:
    # 9:00 China time on the 31st: 01:00 UTC; February has no 31st, so its last day.
    assert next_run_at("month", 31, 9, utc(2027, 1, 31, 1, 0)) == utc(2027, 2, 28, 1, 0)
    assert next_run_at("month", 31, 9, utc(2027, 1, 31, 0, 59)) == utc(2027, 1, 31, 1, 0)
    assert next_run_at("month", 1, 0, utc(2027, 12, 15)) == utc(2027, 12, 31, 24 - CST)
    # Monday (1) at 8:00 China time, asked on Monday 2027-03-01 at 09:00 China time: next week.
    assert next_run_at("week", 1, 8, utc(2027, 3, 1, 1)) == utc(2027, 3, 8, 0)
    assert next_run_at("week", 3, 8, utc(2027, 3, 1, 1)) == utc(2027, 3, 3, 0)
    assert next_run_at("month", 5, 9, utc(2027, 3, 1), period_seconds=2) == utc(2027, 3, 1, 0, 0, 2)
    fields = [e.field for e in schedule_errors("day", 1, 1)]
    assert fields == ["every"]
    assert [e.field for e in schedule_errors("week", 8, 24)] == ["day", "hour"]
    assert [e.field for e in schedule_errors("month", 0, 0)] == ["day"]


async def subscribed(w: World, caller: Caller, **body: Any) -> dict[str, Any]:
    data = msgspec.convert({"sku_id": "s1", "every": "month", "day": 1, **body}, SubscriptionIn)
    return await subscriptions.create(w.deps, caller, data, "k1")


async def test_two_schedulers_or_a_crash_mid_run_place_one_order_per_run() -> None:
    w = world()
    w.sku(stock=10)
    buyer = w.buyer("u1", balance=10 * PRICE)
    sub = await subscribed(w, buyer)
    assert (await subscribed(w, buyer))["_id"] == sub["_id"]  # the same key: the same subscription

    # Two schedulers run run 1 at once: one order, recorded once.
    outcomes = await asyncio.gather(subscriptions.run_one(w.deps, sub), subscriptions.run_one(w.deps, sub))
    await w.settle()
    # The twin either saw the order paid, or still unpaid (it leaves the run to the next tick).
    assert "ok" in outcomes and set(outcomes) <= {"ok", None}
    assert len(w.store.orders) == 1 and sum(w.wallet.captured.values()) == PRICE
    stored = w.store.subs[sub["_id"]]  # type: ignore[attr-defined]
    assert stored["run"] == 2 and [r["run"] for r in stored["runs"]] == [1]

    # Run 2 placed its order, then the process died before recording: the rerun finds it.
    run2 = copy.deepcopy(stored)
    finish = w.store.finish_run

    async def crash(*args: Any) -> bool:
        raise ConnectionError("killed")

    w.store.finish_run = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await subscriptions.run_one(w.deps, run2)
    w.store.finish_run = finish  # type: ignore[method-assign]
    assert await subscriptions.run_one(w.deps, run2) == "ok"
    await w.settle()
    assert len(w.store.orders) == 2 and sum(w.wallet.captured.values()) == 2 * PRICE
    assert "order.subscription-run-failed" not in w.uow.types()


async def test_a_failed_run_is_recorded_and_announced_once_and_not_retried() -> None:
    w = world()
    w.sku(stock=10)
    buyer = w.buyer("u2", balance=PRICE // 2)
    sub = await subscribed(w, buyer)
    assert await subscriptions.run_one(w.deps, sub) == "failed"
    assert await subscriptions.run_one(w.deps, sub) == "failed"  # a second scheduler: recorded once
    await w.settle()
    failed = [e for e in w.uow.committed if e.type == "order.subscription-run-failed"]
    assert len(failed) == 1
    event = msgspec.json.decode(failed[0].data, type=SubscriptionRunFailed)
    assert (event.run, event.reason) == (1, "insufficient-balance") and event.order_id is not None
    stored = w.store.subs[sub["_id"]]  # type: ignore[attr-defined]
    assert stored["run"] == 2 and stored["failures"] == 1
    # Not retried: the next run is the next 1st of the month, 9:00 China time.
    assert stored["next_run_at"] == next_run_at("month", 1, 9, datetime.now(UTC)) > datetime.now(UTC)

    # Sold out: no order at all, the run fails on its own.
    w.inventory.supply["s1"] = 0
    w.wallet.balances["u2"] = 10 * PRICE
    assert await subscriptions.run_one(w.deps, copy.deepcopy(stored)) == "failed"
    assert w.store.subs[sub["_id"]]["last_run"]["reason"] == "out-of-stock"  # type: ignore[attr-defined]
    assert w.store.subs[sub["_id"]]["last_run"]["order_id"] is None  # type: ignore[attr-defined]
