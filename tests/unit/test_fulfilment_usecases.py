"""Fulfilment's use cases with in-memory fakes of their deps (store, unit of work, inventory,
supplier): all-or-nothing automatic delivery, one delivery per paid order, transitions the
tables refuse, the manual queue, direct top-up results, and reveals for the owner only.

The fake store keeps the rules the real one gets from MongoDB: guarded status changes built from
the same `domain` transition tables, claims that never hand a key out twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import msgspec
import pytest

from services.fulfilment.crypto import Vault
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import (
    CARD_KEY,
    DELIVERY,
    MANUAL_TASK,
    DeliveryStatus,
    KeyStatus,
    ParsedBatch,
    TaskStatus,
)
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import ImportReport, claim_op
from services.fulfilment.suppliers import SupplierResult
from services.fulfilment.usecases import delivery, direct, manual, reminders, reveal
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import (
    FulfilmentFailed,
    FulfilmentStarted,
    FulfilmentSucceeded,
    KeyExpiryReminder,
    KeysRevealed,
)
from shared.contracts.order import CancelRequested, OrderPaid
from shared.contracts.registry import lookup
from shared.errors import Problem
from shared.messaging.outbox import Tx

T = TypeVar("T")

VAULT = Vault.from_config("k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=")
SKU = "sku-1"


# -- fakes ---------------------------------------------------------------------------------------


class FakeStore:
    """`FulfilmentStore` in memory. Guarded moves consult the domain tables, as the real one does."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.reveals: list[dict[str, Any]] = []
        self.skus: dict[str, dict[str, Any]] = {}

    def add_keys(self, *codes: str, sku_id: str = SKU) -> None:
        for code in codes:
            key_id = f"key-{len(self.keys) + 1:03d}"
            self.keys[key_id] = {
                "_id": key_id,
                "sku_id": sku_id,
                "code": code,
                "status": "available",
                "expires_at": None,
            }

    def owned(self, claim_id: str) -> list[str]:
        return sorted(k["_id"] for k in self.keys.values() if k.get("order_id") == claim_id)

    # vault
    async def claim_keys(self, tx: Tx, sku_id: str, claim_id: str, quantity: int, *, user_id: str) -> list[str]:
        if owned := self.owned(claim_id):
            return owned
        free = sorted(k["_id"] for k in self.keys.values() if k["sku_id"] == sku_id and k["status"] == "available")
        for key_id in free[:quantity]:
            key = self.keys[key_id]
            assert CARD_KEY.can_move(KeyStatus(key["status"]), KeyStatus.SOLD)
            key.update(status="sold", order_id=claim_id, user_id=user_id, sold_at=utcnow())
        return self.owned(claim_id)

    async def release_keys(self, tx: Tx, key_ids: list[str], claim_id: str) -> None:
        for key_id in key_ids:
            key = self.keys[key_id]
            if key.get("order_id") == claim_id and CARD_KEY.can_move(KeyStatus(key["status"]), KeyStatus.AVAILABLE):
                key["status"] = "available"
                for name in ("order_id", "sold_at", "user_id"):
                    key.pop(name, None)

    async def reveal_keys(self, vault: Vault, claim_id: str, *, user_id: str) -> list[tuple[str, datetime | None]]:
        return [
            (k["code"], k["expires_at"])
            for k in self.keys.values()
            if k.get("order_id") == claim_id and k["status"] == "sold" and k.get("user_id") == user_id
        ]

    # deliveries
    async def open_delivery(self, tx: Tx, doc: dict[str, Any]) -> bool:
        if doc["_id"] in self.deliveries:
            return False
        self.deliveries[doc["_id"]] = dict(doc)
        return True

    async def get_delivery(
        self, order_id: str, *, tx: Tx | None = None, user_id: str | None = None
    ) -> dict[str, Any] | None:
        doc = self.deliveries.get(order_id)
        if doc is None or (user_id is not None and doc["user_id"] != user_id):
            return None
        return dict(doc)

    async def move_delivery(
        self,
        tx: Tx | None,
        order_id: str,
        target: DeliveryStatus,
        *,
        only_from: DeliveryStatus | None = None,
        also: dict[str, Any] | None = None,
        set_: dict[str, Any] | None = None,
        unset: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        if only_from is not None and not DELIVERY.can_move(only_from, target):
            raise ValueError(f"a delivery cannot move from {only_from} to {target}")
        doc = self.deliveries.get(order_id)
        if doc is None or doc["status"] not in DELIVERY.sources(target):
            return None
        if only_from is not None and doc["status"] != only_from:
            return None
        if any(doc.get(k) != v for k, v in (also or {}).items()):
            return None
        doc.update(status=target.value, **(set_ or {}))
        for name in unset:
            doc.pop(name, None)
        return dict(doc)

    async def annotate_delivery(
        self, order_id: str, status: DeliveryStatus, fields: dict[str, Any], *, also: dict[str, Any] | None = None
    ) -> None:
        doc = self.deliveries.get(order_id)
        if doc is not None and doc["status"] == status:
            doc.update(fields)

    # the manual queue
    async def add_task(self, tx: Tx, doc: dict[str, Any]) -> None:
        assert doc["_id"] not in self.tasks
        self.tasks[doc["_id"]] = dict(doc)

    async def close_task(
        self, tx: Tx, task_id: str, target: TaskStatus, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        task = self.tasks.get(task_id)
        if task is None or task["status"] not in MANUAL_TASK.sources(target):
            return None
        task.update(status=target.value, **fields)
        return dict(task)

    async def task_exists(self, task_id: str, *, tx: Tx | None = None) -> bool:
        return task_id in self.tasks

    async def task_content(self, order_id: str) -> dict[str, Any] | None:
        task = self.tasks.get(order_id)
        return task.get("content") if task else None

    async def record_reveal(self, doc: dict[str, Any]) -> None:
        self.reveals.append(doc)

    async def get_sku(self, sku_id: str) -> dict[str, Any] | None:
        return self.skus.get(sku_id)

    async def reusable_key(self, tx: Tx, sku_id: str, now: datetime) -> tuple[str, datetime | None] | None:
        mine = [k["_id"] for k in self.keys.values() if k["sku_id"] == sku_id and k["status"] == "available"]
        return (max(mine), self.keys[max(mine)]["expires_at"]) if mine else None

    async def open_key(self, vault: Vault, key_id: str) -> tuple[str, datetime | None] | None:
        key = self.keys.get(key_id)
        return (key["code"], key["expires_at"]) if key else None

    async def mark_revealed(self, tx: Tx, order_id: str, at: datetime) -> bool:
        doc = self.deliveries[order_id]
        if doc.get("revealed_at") is not None:
            return False
        doc["revealed_at"] = at
        return True

    async def expiring_sold_keys(self, now: datetime, horizon: datetime, limit: int) -> dict[str, datetime]:
        found: dict[str, datetime] = {}
        for k in sorted(self.keys.values(), key=lambda k: k["expires_at"] or now):
            due = k["status"] == "sold" and k["expires_at"] and now < k["expires_at"] <= horizon
            if due and not k.get("remind_checked"):
                found.setdefault(k["order_id"], k["expires_at"])
        return found

    async def expiring_reusable_deliveries(self, now: datetime, horizon: datetime, limit: int) -> dict[str, datetime]:
        return {
            order_id: d["key_expires_at"]
            for order_id, d in self.deliveries.items()
            if d.get("key_expires_at") and now < d["key_expires_at"] <= horizon
            if d.get("revealed_at") is None and d.get("reminded_at") is None
        }

    async def mark_reminded(self, tx: Tx, order_id: str, at: datetime) -> bool:
        doc = self.deliveries[order_id]
        if doc.get("revealed_at") is not None or doc.get("reminded_at") is not None:
            return False
        doc["reminded_at"] = at
        return True

    async def keys_looked_at(self, tx: Tx, order_id: str) -> None:
        for k in self.keys.values():
            if k.get("order_id") == order_id and k["status"] == "sold":
                k["remind_checked"] = True

    async def import_keys(
        self, uow: Any, vault: Vault, sku: dict[str, Any], batch: ParsedBatch, *, by: str, source: str
    ) -> ImportReport:
        raise NotImplementedError


class FakeUow:
    """Runs the function on a Tx; its events and after-commit actions count only if it returns."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        tx = new_tx()
        result = await fn(tx)
        await commit(tx, self.events)
        return result


class FakeInventory:
    def __init__(self) -> None:
        self.supply: dict[str, int] = {}
        self.ops: set[str] = set()

    async def known(self, sku_id: str) -> bool:
        return sku_id in self.supply

    async def adjust_supply(self, sku_id: str, delta: int, op_id: str, *, hands_over: str | None = None) -> int | None:
        if op_id in self.ops:
            return None
        self.ops.add(op_id)
        self.supply[sku_id] += delta
        return self.supply[sku_id]


class FakeSupplier:
    name = "sim"

    def __init__(self, *outcomes: str) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[str] = []

    async def submit(self, request_id: str, account: str, amount_cents: int, callback_url: str) -> SupplierResult:
        self.requests.append(request_id)
        return SupplierResult(request_id=request_id, status=self.outcomes.pop(0), supplier_ref=f"ref-{request_id}")

    async def query(self, request_id: str) -> SupplierResult:
        return SupplierResult(request_id=request_id, supplier_ref="", status="processing")

    def verify_callback(self, body: bytes, signature: str) -> SupplierResult | None:
        return None


def new_tx() -> Tx:
    return Tx(db=cast(Any, None), session=cast(Any, None), producer="fulfilment")


async def commit(tx: Tx, events: list[Any]) -> None:
    """Keep the committed events as the typed payloads a consumer would decode."""
    for envelope, _topic in tx.events:
        assert b"SECRET" not in bytes(envelope.data)  # card keys are never evented
        spec = lookup(envelope.type, envelope.version)
        assert spec is not None
        events.append(msgspec.json.decode(envelope.data, type=spec.model))
    for action in tx.post_commit:
        await action()


class World:
    def __init__(self, supplier: FakeSupplier | None = None, **settings: Any) -> None:
        self.store = FakeStore()
        self.uow = FakeUow()
        self.inventory = FakeInventory()
        self.inventory.supply[SKU] = 0
        self.supplier = supplier or FakeSupplier()
        self.deps = FulfilmentDeps(
            settings=FulfilmentSettings(**settings),
            store=cast(Any, self.store),
            uow=cast(Any, self.uow),
            inventory=cast(Any, self.inventory),
            supplier=self.supplier,
            vault=VAULT,
        )
        self.events = self.uow.events

    async def deliver(self, paid: OrderPaid) -> None:
        """What the order.paid handler does: the use case inside one transaction."""
        await self.uow.run(lambda tx: delivery.start_delivery(tx, self.deps, paid))

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]


def paid(order_id: str = "o-1", quantity: int = 2, mode: str = "auto", user_id: str = "buyer-1") -> OrderPaid:
    return OrderPaid(
        order_id=order_id,
        user_id=user_id,
        sku_id=SKU,
        quantity=quantity,
        delivery_mode=cast(Any, mode),
        recipient={"mobile": "13800000000"} if mode != "auto" else {},
        face_value_cents=5000 if mode == "direct" else None,
    )


# -- automatic delivery ----------------------------------------------------------------------------


async def test_auto_delivery_claims_every_key_and_takes_them_out_of_supply() -> None:
    w = World()
    w.store.add_keys("A", "B", "C")
    w.inventory.supply[SKU] = 3
    await w.deliver(paid(quantity=2))
    assert w.store.owned("o-1") == ["key-001", "key-002"]
    assert w.store.deliveries["o-1"]["status"] == "succeeded"
    assert w.store.deliveries["o-1"]["key_ids"] == ["key-001", "key-002"]
    [done] = w.of(FulfilmentSucceeded)
    assert (done.order_id, done.quantity, done.mode, done.sku_id) == ("o-1", 2, "auto", SKU)
    assert w.inventory.supply[SKU] == 1 and claim_op("o-1") in w.inventory.ops
    assert not w.of(FulfilmentFailed)


async def test_auto_delivery_short_of_keys_puts_back_what_it_took_and_fails_for_a_refund() -> None:
    w = World()
    w.store.add_keys("ONLY")
    w.inventory.supply[SKU] = 1
    await w.deliver(paid(quantity=2))
    assert w.store.keys["key-001"]["status"] == "available" and "order_id" not in w.store.keys["key-001"]
    assert w.store.deliveries["o-1"]["status"] == "failed"
    [failed] = w.of(FulfilmentFailed)
    assert failed.reason == "only 1 of 2 card keys left"
    assert not w.of(FulfilmentSucceeded)
    assert w.inventory.supply[SKU] == 1  # nothing left the supply


async def test_a_duplicate_order_paid_does_not_deliver_twice() -> None:
    w = World()
    w.store.add_keys("A", "B", "C", "D")
    w.inventory.supply[SKU] = 4
    await w.deliver(paid(quantity=2))
    await w.deliver(paid(quantity=2))
    assert len(w.of(FulfilmentSucceeded)) == 1
    assert [k["_id"] for k in w.store.keys.values() if k["status"] == "sold"] == ["key-001", "key-002"]
    assert w.inventory.supply[SKU] == 2


# -- transitions the tables refuse -----------------------------------------------------------------


async def test_closing_a_delivery_the_table_does_not_allow_changes_nothing() -> None:
    w = World()
    w.store.add_keys("A")
    await w.deliver(paid(quantity=1))
    before = dict(w.store.deliveries["o-1"])
    tx = new_tx()
    assert await delivery.finish(tx, w.deps.store, "o-1", succeeded=False, reason="late failure") is None
    assert await delivery.finish(tx, w.deps.store, "o-1", succeeded=True) is None
    assert tx.events == [] and w.store.deliveries["o-1"] == before
    # A move the table has no row for is a programming error, not a silent no-op.
    with pytest.raises(ValueError, match="cannot move"):
        await delivery.finish(tx, w.deps.store, "o-1", succeeded=True, only_from=DeliveryStatus.FAILED)


def test_the_tables_declare_each_lifecycle() -> None:
    assert DELIVERY.sources(DeliveryStatus.SUBMITTED) == ["pending"]
    assert DELIVERY.final() == {DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED}
    assert not CARD_KEY.can_move(KeyStatus.DISABLED, KeyStatus.SOLD)
    assert not CARD_KEY.can_move(KeyStatus.SOLD, KeyStatus.DISABLED)  # a sold key is after-sales
    assert MANUAL_TASK.guard(TaskStatus.COMPLETED) == {"status": {"$in": ["pending"]}}


async def test_a_cancel_stops_only_what_nothing_was_sent_for() -> None:
    w = World(FakeSupplier("processing"))
    await w.deliver(paid("o-manual", 1, "manual"))
    await w.deliver(paid("o-direct", 1, "direct"))
    await direct.submit(w.deps, w.store.deliveries["o-direct"])  # sent: it cannot stop any more
    for order_id in ("o-manual", "o-direct"):
        await w.uow.run(
            lambda tx, o=order_id: delivery.stop_if_nothing_went_out(
                tx, w.deps, CancelRequested(order_id=o, user_id="buyer-1")
            )
        )
    assert w.store.tasks["o-manual"]["status"] == "cancelled"
    assert w.store.deliveries["o-manual"]["status"] == "failed"
    assert w.store.deliveries["o-direct"]["status"] == "submitted"
    assert [e.order_id for e in w.of(FulfilmentFailed)] == ["o-manual"]


# -- the manual queue ------------------------------------------------------------------------------


async def test_a_manual_task_completes_once_with_the_content_sealed() -> None:
    w = World()
    await w.deliver(paid("o-m", 1, "manual"))
    [started] = w.of(FulfilmentStarted)
    assert (started.mode, started.estimated_minutes) == ("manual", 180)
    task = await manual.complete_task(w.deps, "staff-1", "o-m", "GIFT-CODE-123")
    assert (task["status"], task["completed_by"]) == ("completed", "staff-1")
    assert "GIFT-CODE-123" not in str(w.store.tasks["o-m"]["content"])
    assert w.store.deliveries["o-m"]["status"] == "succeeded"
    for again in (
        manual.complete_task(w.deps, "staff-2", "o-m", "OTHER"),
        manual.fail_task(w.deps, "staff-2", "o-m", "no stock"),
    ):
        with pytest.raises(Problem) as closed:
            await again
        assert (closed.value.status_code, closed.value.slug) == (409, "task-closed")
    assert len(w.of(FulfilmentSucceeded)) == 1 and not w.of(FulfilmentFailed)
    assert w.store.tasks["o-m"]["completed_by"] == "staff-1"
    with pytest.raises(Problem) as missing:
        await manual.complete_task(w.deps, "staff-1", "nope", "X")
    assert missing.value.status_code == 404


async def test_a_failed_manual_task_refunds_the_order() -> None:
    w = World()
    await w.deliver(paid("o-f", 1, "manual"))
    await manual.fail_task(w.deps, "staff-1", "o-f", "supplier out of stock")
    [failed] = w.of(FulfilmentFailed)
    assert failed.reason == "staff: supplier out of stock"
    assert w.store.deliveries["o-f"]["status"] == "failed"


# -- direct top-ups --------------------------------------------------------------------------------


async def test_a_direct_result_applies_once_and_a_definite_failure_retries_with_a_new_request() -> None:
    w = World(FakeSupplier("failed", "processing"), direct_max_attempts=2)
    await w.deliver(paid("o-d", 1, "direct"))
    await direct.submit(w.deps, w.store.deliveries["o-d"])
    d = w.store.deliveries["o-d"]
    assert (d["status"], "request_id" in d, d["last_failure"]) == ("pending", False, None)
    await direct.submit(w.deps, w.store.deliveries["o-d"])
    assert w.supplier.requests == ["o-d.1", "o-d.2"]
    ok = SupplierResult(request_id="o-d.2", status="succeeded", supplier_ref="r2")
    assert (
        await direct.apply_result(w.deps, SupplierResult(request_id="o-d.1", supplier_ref="r1", status="succeeded"))
        == "stale"
    )
    assert await direct.apply_result(w.deps, ok) == "succeeded"
    assert await direct.apply_result(w.deps, ok) == "stale"  # a callback after the poll: once
    assert len(w.of(FulfilmentSucceeded)) == 1
    assert w.store.deliveries["o-d"]["supplier_ref"] == "r2"


# -- reveal ----------------------------------------------------------------------------------------


async def test_only_the_owner_sees_the_card_keys_and_every_reveal_is_recorded_without_them() -> None:
    w = World()
    w.store.add_keys("SECRET-1", "SECRET-2")
    await w.deliver(paid(quantity=2, user_id="buyer-1"))
    shown = await reveal.reveal(w.deps, Caller(user_id="buyer-1"), "o-1", "req-1")
    assert shown.status == "succeeded"
    assert sorted(k.code for k in shown.card_keys) == ["SECRET-1", "SECRET-2"]
    with pytest.raises(Problem) as hidden:
        await reveal.reveal(w.deps, Caller(user_id="someone-else"), "o-1", "req-2")
    assert hidden.value.status_code == 404
    [record] = w.store.reveals
    assert (record["user_id"], record["count"], record["request_id"]) == ("buyer-1", 2, "req-1")
    assert "SECRET" not in str(record)
    # The first reveal is told once (待使用 ends); later reveals only join the log.
    again = await reveal.reveal(w.deps, Caller(user_id="buyer-1"), "o-1", "req-3")
    [first] = w.of(KeysRevealed)
    assert again.revealed_at == shown.revealed_at == first.revealed_at and "SECRET" not in str(first)


async def test_a_reusable_key_goes_to_every_buyer_and_stays_available() -> None:
    w = World()
    w.store.skus[SKU] = {"_id": SKU, "key_mode": "reusable"}
    w.store.add_keys("LOOP-OLD", "LOOP-NEW")
    for n in range(3):
        await w.deliver(paid(f"o-{n}", 1, user_id=f"buyer-{n}"))
        shown = await reveal.reveal(w.deps, Caller(user_id=f"buyer-{n}"), f"o-{n}", None)
        assert [k.code for k in shown.card_keys] == ["LOOP-NEW"]  # the newest key
    assert {k["status"] for k in w.store.keys.values()} == {"available"}
    assert len(w.of(FulfilmentSucceeded)) == 3 and not w.of(FulfilmentFailed)


async def test_unrevealed_keys_are_reminded_once_before_they_expire_and_revealed_ones_never() -> None:
    w = World(key_reminder_days=3)
    w.store.add_keys("K-1", "K-2", "K-3")
    soon, later = utcnow() + timedelta(days=2), utcnow() + timedelta(days=20)
    for key_id, expiry in zip(sorted(w.store.keys), (soon, soon, later), strict=True):
        w.store.keys[key_id]["expires_at"] = expiry
    await w.deliver(paid("o-a", 1, user_id="buyer-a"))  # K-1: expires in 2 days
    await w.deliver(paid("o-b", 1, user_id="buyer-b"))  # K-2: also in 2 days, but revealed
    await w.deliver(paid("o-c", 1, user_id="buyer-c"))  # K-3: in 20 days, outside the window
    await reveal.reveal(w.deps, Caller(user_id="buyer-b"), "o-b", None)
    assert await reminders.remind_once(w.deps) == 1
    assert await reminders.remind_once(w.deps) == 0  # a second sweep: nothing again
    [sent] = w.of(KeyExpiryReminder)
    assert (sent.order_id, sent.user_id, sent.expires_at) == ("o-a", "buyer-a", soon)


async def test_buyers_of_a_reusable_key_that_expires_soon_are_reminded_once_unless_they_revealed_it() -> None:
    w = World(key_reminder_days=3)
    w.store.skus[SKU] = {"_id": SKU, "key_mode": "reusable"}
    w.store.add_keys("LOOP-1")
    soon = utcnow() + timedelta(days=2)
    w.store.keys[next(iter(w.store.keys))]["expires_at"] = soon
    for n in range(3):
        await w.deliver(paid(f"o-{n}", 1, user_id=f"buyer-{n}"))
    await reveal.reveal(w.deps, Caller(user_id="buyer-1"), "o-1", None)
    assert await reminders.remind_once(w.deps) == 2
    assert await reminders.remind_once(w.deps) == 0  # a second sweep: nothing again
    assert sorted((r.order_id, r.user_id, r.expires_at) for r in w.of(KeyExpiryReminder)) == [
        ("o-0", "buyer-0", soon),
        ("o-2", "buyer-2", soon),
    ]
    assert {k["status"] for k in w.store.keys.values()} == {"available"}  # still the next buyer's key


async def test_reveal_of_a_manual_order_opens_the_sealed_content() -> None:
    w = World()
    await w.deliver(paid("o-m", 1, "manual"))
    pending = await reveal.reveal(w.deps, Caller(user_id="buyer-1"), "o-m", None)
    assert (pending.status, pending.card_keys) == ("pending", [])
    await manual.complete_task(w.deps, "staff-1", "o-m", "ACCOUNT: x / PASS: y")
    done = await reveal.reveal(w.deps, Caller(user_id="buyer-1"), "o-m", None)
    assert [k.code for k in done.card_keys] == ["ACCOUNT: x / PASS: y"]
    assert done.card_keys[0].expires_at is None
    assert utcnow() - w.store.reveals[-1]["at"] < timedelta(seconds=5)
