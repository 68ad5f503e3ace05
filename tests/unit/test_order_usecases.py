"""The order service's use cases with in-memory fakes of their deps: the store, the Redis
inventory, the status channel, the unit of work, and a wallet that answers payment requests the
way the real one does (after the placing transaction commits, through the saga's handlers)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec
import pytest
import redis.exceptions

from services.order import domain
from services.order.deps import OrderDeps
from services.order.domain import BATCH_FLOW, ORDER_FLOW, PAID_STATUSES, USING_COUPON, BatchStatus, Status
from services.order.schemas import OrderRequest
from services.order.settings import OrderSettings
from services.order.sheets import Rejected, Row
from services.order.store import OrderStore, SkuCache
from services.order.usecases import batches, orders, placing, saga, upkeep
from services.order.watch import StatusWatch
from shared import edge_cache
from shared.auth import Caller
from shared.contracts.catalog import RecipientField, SkuChanged
from shared.contracts.envelope import Envelope, utcnow
from shared.contracts.order import OrderPlaced, OrderStatusChanged, PaymentRequested
from shared.coupons import Coupon
from shared.errors import Problem
from shared.idempotency import derived_id
from shared.inventory import EPOCH_HELD, EPOCH_SUPPLY, HoldResult, Inventory, Stock
from shared.messaging.outbox import Tx
from shared.paging import Paging

T = TypeVar("T")
PRICE = 1000


# -- fakes ---------------------------------------------------------------------------------------


class FakeStore(OrderStore):
    """Dicts instead of collections; the same guards (the domain's tables) as the real store."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.templates_: dict[str, dict[str, Any]] = {}
        self.skus: dict[str, SkuChanged] = {}
        self.verified: set[str] = set()
        self.coupons: dict[str, Coupon] = {}
        self.granted: dict[tuple[str, str], int] = {}
        self.persons: dict[str, str] = {}
        self.observed: dict[str, int] = {}
        self.trials: dict[tuple[str, str], str] = {}
        """(sku, person) -> the order that claimed the trial."""

    def state(self) -> tuple[Any, ...]:
        return (self.orders, self.batches, self.templates_, self.skus, self.verified, self.trials)

    def restore(self, state: tuple[Any, ...]) -> None:
        self.orders, self.batches, self.templates_, self.skus, self.verified, self.trials = state

    async def add_order(self, tx: Tx, order: dict[str, Any]) -> None:
        if order["_id"] in self.orders:
            from pymongo.errors import DuplicateKeyError

            raise DuplicateKeyError("orders._id")
        self.orders[order["_id"]] = copy.deepcopy(order)

    async def add_orders(self, tx: Tx, orders: list[dict[str, Any]]) -> None:
        for order in orders:
            await self.add_order(tx, order)

    async def order(self, order_id: str, *, history: bool = True) -> dict[str, Any] | None:
        doc = copy.deepcopy(self.orders.get(order_id))
        if doc is not None and not history:
            doc.pop("history")
        return doc

    async def own_order(self, user_id: str, order_id: str) -> dict[str, Any] | None:
        doc = self.orders.get(order_id)
        return copy.deepcopy(doc) if doc is not None and doc["user_id"] == user_id else None

    async def list_orders(
        self, user_id: str, statuses: list[str] | None, *, skip: int, limit: int, unrevealed: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        mine = [
            o for o in self.orders.values() if o["user_id"] == user_id and (statuses is None or o["status"] in statuses)
        ]
        if unrevealed:
            mine = [o for o in mine if o.get("revealed_at") is None and o["delivery_mode"] in ("auto", "manual")]
        mine.sort(key=lambda o: o["created_at"], reverse=True)
        return copy.deepcopy(mine[skip : skip + limit]), len(mine)

    async def transition(
        self, tx: Tx, order_id: str, target: Status, *, reason: str | None = None, fields: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        doc = self.orders.get(order_id)
        if doc is None or doc["status"] not in ORDER_FLOW.sources(target):
            return None
        before = copy.deepcopy(doc)
        entry: dict[str, Any] = {"status": target.value, "at": utcnow()}
        if reason:
            entry["reason"] = reason
        doc.update({"status": target.value, **(fields or {})})
        doc["history"].append(entry)
        doc["version"] += 1
        return before

    async def mark_urged(self, tx: Tx, order_id: str, last_urged_at: datetime | None, now: datetime) -> bool:
        doc = self.orders[order_id]
        if doc.get("urged_at") != last_urged_at:
            return False
        doc["urged_at"] = now
        doc["urge_count"] = doc.get("urge_count", 0) + 1
        return True

    async def mark_cancel_requested(self, tx: Tx, order_id: str, at: datetime) -> None:
        self.orders[order_id]["cancel_requested_at"] = at

    async def due_unpaid(self, now: datetime, limit: int) -> list[str]:
        due = [o["_id"] for o in self.orders.values() if o["status"] == "pending_payment" and o["expires_at"] < now]
        return due[:limit]

    async def units_counting_against_limit(self, user_id: str, sku_id: str) -> int:
        counting = {"pending_payment", "paid", "delivering", "delivered"}
        return sum(
            o["quantity"]
            for o in self.orders.values()
            if o["user_id"] == user_id and o["sku_id"] == sku_id and o["status"] in counting
        )

    async def open_holds(self, sku_id: str | None = None) -> dict[str, dict[str, int]]:
        holds: dict[str, dict[str, int]] = {}
        for o in self.orders.values():
            if o["status"] in {"pending_payment", "paid", "delivering"} and sku_id in (None, o["sku_id"]):
                holds.setdefault(o["sku_id"], {})[o["_id"]] = o["quantity"]
        return holds

    async def add_batch(self, tx: Tx, batch: dict[str, Any]) -> None:
        self.batches[batch["_id"]] = copy.deepcopy(batch)

    async def batch(self, batch_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.batches.get(batch_id))

    async def own_batch(self, user_id: str, batch_id: str) -> dict[str, Any] | None:
        doc = self.batches.get(batch_id)
        return copy.deepcopy(doc) if doc is not None and doc["user_id"] == user_id else None

    async def settle_batch(
        self, tx: Tx, batch_id: str, target: BatchStatus, fields: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        doc = self.batches.get(batch_id)
        if doc is None or doc["status"] not in BATCH_FLOW.sources(target):
            return None
        before = copy.deepcopy(doc)
        doc.update({"status": target.value, **(fields or {})})
        return before

    async def add_template(self, doc: dict[str, Any]) -> None:
        self.templates_[doc["_id"]] = copy.deepcopy(doc)

    async def templates(self, user_id: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(t) for t in self.templates_.values() if t["user_id"] == user_id]

    async def template(self, user_id: str, template_id: str) -> dict[str, Any] | None:
        doc = self.templates_.get(template_id)
        return copy.deepcopy(doc) if doc is not None and doc["user_id"] == user_id else None

    async def drop_template(self, user_id: str, template_id: str) -> bool:
        if template_id in self.templates_ and self.templates_[template_id]["user_id"] == user_id:
            del self.templates_[template_id]
            return True
        return False

    async def sku(self, sku_id: str) -> SkuChanged | None:
        return self.skus.get(sku_id)

    async def upsert_sku(self, tx: Tx, sku: SkuChanged) -> bool:
        known = self.skus.get(sku.sku_id)
        if known is not None and known.revision >= sku.revision:
            return False
        self.skus[sku.sku_id] = sku
        return True

    async def buyer_verified(self, user_id: str) -> bool:
        return user_id in self.verified

    async def mark_verified(self, tx: Tx, user_id: str, *, person: str | None = None) -> None:
        self.verified.add(user_id)
        if person:
            self.persons[user_id] = person

    async def observed_eta(self, sku_id: str) -> int | None:
        return self.observed.get(sku_id)

    async def buyer_person(self, user_id: str) -> str | None:
        return self.persons.get(user_id)

    async def trial_taken(self, sku_id: str, person: str) -> bool:
        return (sku_id, person) in self.trials

    async def claim_trial(self, tx: Tx, sku_id: str, person: str, order_id: str, user_id: str) -> None:
        if (sku_id, person) in self.trials:
            from pymongo.errors import DuplicateKeyError

            raise DuplicateKeyError("trials._id")
        self.trials[(sku_id, person)] = order_id

    async def release_trial(self, tx: Tx, order_id: str) -> bool:
        claims = [k for k, claimed_by in self.trials.items() if claimed_by == order_id]
        for key in claims:
            del self.trials[key]
        return bool(claims)

    async def set_pay_url(self, tx: Tx, order_id: str, pay_url: str) -> bool:
        doc = self.orders.get(order_id)
        if doc is None or doc["status"] != "pending_payment" or doc.get("pay_url") is not None:
            return False
        doc["pay_url"] = pay_url
        return True

    async def coupon_in_use(self, user_id: str, code: str) -> int:
        using = {s.value for s in USING_COUPON}
        return sum(
            1
            for o in self.orders.values()
            if o["user_id"] == user_id and o.get("coupon_code") == code and o["status"] in using
        )

    async def paid_orders(self, user_id: str) -> int:
        paid = {s.value for s in PAID_STATUSES}
        return int(any(o["user_id"] == user_id and o["status"] in paid for o in self.orders.values()))

    async def coupon(self, code: str) -> Coupon | None:
        return self.coupons.get(code)

    async def coupon_granted(self, user_id: str, code: str) -> int:
        return self.granted.get((user_id, code), 0)


class FakeInventory(Inventory):
    """The Lua scripts' rules over dicts: hold only what is sellable, idempotent per order."""

    def __init__(self) -> None:
        self.supply: dict[str, int] = defaultdict(int)
        self.holds: dict[str, dict[str, int]] = defaultdict(dict)

    def held(self, sku_id: str) -> int:
        return sum(self.holds[sku_id].values())

    async def hold(self, sku_id: str, order_id: str, units: int) -> HoldResult:
        if order_id in self.holds[sku_id]:
            return HoldResult(ok=True, units=self.holds[sku_id][order_id])
        sellable = self.supply[sku_id] - self.held(sku_id)
        if sellable < units:
            seen = (
                (f"inv:{{{sku_id}}}:held", str(self.held(sku_id))),
                (f"inv:{{{sku_id}}}:supply", str(self.supply[sku_id])),
            )
            return HoldResult(ok=False, units=sellable, seen=seen)
        self.holds[sku_id][order_id] = units
        return HoldResult(ok=True, units=units)

    async def release(self, sku_id: str, order_id: str) -> int:
        return self.holds[sku_id].pop(order_id, 0)

    async def set_holds(self, sku_id: str, holds: Any) -> int:
        self.holds[sku_id] = dict(holds)
        return self.held(sku_id)

    async def set_holds_if_missing(self, sku_id: str, holds: Any) -> bool:
        if sku_id in self.holds:
            return False
        self.holds[sku_id] = dict(holds)
        return True

    async def epoch_known(self, marker: str) -> bool:
        return True

    async def epoch(self, marker: str) -> str | None:
        return "1"

    async def holds_known(self, sku_id: str) -> bool:
        return sku_id in self.holds

    async def skus_with_holds(self) -> list[str]:
        return list(self.holds)

    async def stock(self, sku_id: str) -> Stock:
        return Stock(supply=self.supply[sku_id], held=self.held(sku_id))


class FakeWatch(StatusWatch):
    """The status channel without Redis: a publish wakes this process's waiters at once."""

    def __init__(self) -> None:
        self._waiters = defaultdict(set)
        self.listening = asyncio.Event()
        self.listening.set()
        self.published: list[tuple[str, str]] = []

    async def publish(self, order_id: str, status: str) -> None:
        self.published.append((order_id, status))
        self._deliver(order_id, status)


class FakeUnitOfWork:
    """All or nothing over the fake store: events are kept and after-commit actions run only when
    the function returns; an exception puts the store back as it was."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.committed: list[Envelope] = []
        self.on_commit: list[Callable[[list[Envelope]], None]] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        saved = copy.deepcopy(self.store.state())
        tx = Tx(db=None, session=None, producer="order")  # type: ignore[arg-type]
        try:
            value = await fn(tx)
        except BaseException:
            self.store.restore(saved)
            raise
        events = [env for env, _ in tx.events]
        self.committed += events
        for action in tx.post_commit:
            await action()
        for listener in self.on_commit:
            listener(events)
        return value

    def types(self) -> list[str]:
        return [e.type for e in self.committed]


class FakeWallet:
    """Answers `order.payment-requested` like the wallet: capture when the balance covers it,
    else decline `insufficient-balance`; each answer is applied in its own unit of work."""

    def __init__(self, deps: OrderDeps, uow: FakeUnitOfWork) -> None:
        self.deps = deps
        self.uow = uow
        self.balances: dict[str, int] = defaultdict(int)
        self.captured: dict[str, int] = {}
        self.online = True
        self.tasks: list[asyncio.Task[None]] = []
        self.coupons_available: dict[tuple[str, str], int] = defaultdict(int)
        self.holds: dict[str, str] = {}
        """order id -> held | rejected, as the wallet records them on order.placed."""
        uow.on_commit.append(self._saw)

    def _saw(self, events: list[Envelope]) -> None:
        for env in events:
            if env.type == "order.placed" and self.online:
                placed = msgspec.json.decode(env.data, type=OrderPlaced)
                if placed.coupon_code:
                    key = (placed.user_id, placed.coupon_code)
                    ok = self.coupons_available[key] > 0
                    self.coupons_available[key] -= ok
                    self.holds[placed.order_id] = "held" if ok else "rejected"
            if env.type == "order.status-changed" and self.online:
                changed = msgspec.json.decode(env.data, type=OrderStatusChanged)
                if changed.status in ("cancelled", "expired") and self.holds.get(changed.order_id) == "held":
                    self.holds[changed.order_id] = "released"
                    order = self.deps.store.orders[changed.order_id]  # type: ignore[attr-defined]
                    self.coupons_available[(changed.user_id, order["coupon_code"])] += 1
            if env.type == "order.payment-requested" and self.online:
                request = msgspec.json.decode(env.data, type=PaymentRequested)
                self.tasks.append(asyncio.get_running_loop().create_task(self._answer(request)))

    async def _answer(self, request: PaymentRequested) -> None:
        if request.order_id in self.captured:
            return  # the ledger key is the payment id: one debit per order
        coupon_order = request.coupon_order_id or request.order_id
        if request.coupon_code and self.holds.get(coupon_order) != "held":

            async def refused(tx: Tx) -> None:
                await saga.payment_declined(tx, self.deps, request.order_id, "coupon-unavailable")

            await self.uow.run(refused)
            return
        if request.method == "provider":

            async def pending(tx: Tx) -> bool:
                return await saga.payment_pending(tx, self.deps, request.order_id, f"https://pay/{request.order_id}")

            await self.uow.run(pending)
            return
        if self.balances[request.user_id] >= request.amount_cents:
            self.balances[request.user_id] -= request.amount_cents
            self.captured[request.order_id] = request.amount_cents

            async def captured(tx: Tx) -> str:
                return await saga.payment_captured(tx, self.deps, request.order_id)

            await self.uow.run(captured)
        else:

            async def declined(tx: Tx) -> None:
                await saga.payment_declined(tx, self.deps, request.order_id, "insufficient-balance")

            await self.uow.run(declined)


class World:
    def __init__(self, **settings: Any) -> None:
        self.store = FakeStore()
        self.uow = FakeUnitOfWork(self.store)
        self.inventory = FakeInventory()
        self.watch = FakeWatch()
        self.deps = OrderDeps(
            settings=OrderSettings(**{"place_wait_seconds": 2.0, "sku_wait_seconds": 0.3, **settings}),
            store=self.store,
            uow=self.uow,  # type: ignore[arg-type]
            inventory=self.inventory,
            watch=self.watch,
            skus=SkuCache(self.store.sku, 0),
        )
        self.wallet = FakeWallet(self.deps, self.uow)

    def sku(self, sku_id: str = "s1", *, stock: int = 0, **overrides: Any) -> SkuChanged:
        base: dict[str, Any] = dict(
            sku_id=sku_id,
            revision=1,
            name="100元",
            product_id="p1",
            product_name="中国移动话费",
            category_id="c1",
            category_name="话费充值",
            scenario_id="sc1",
            face_value_cents=10000,
            prices={"retail": PRICE, "vip": PRICE, "agent": PRICE},
            delivery_mode="auto",
        )
        base.update(overrides)
        sku = SkuChanged(**base)
        self.store.skus[sku_id] = sku
        self.inventory.supply[sku_id] = stock
        return sku

    def buyer(self, user_id: str, balance: int) -> Caller:
        self.wallet.balances[user_id] = balance
        return Caller(user_id=user_id)

    async def place(self, caller: Caller, quantity: int = 1, key: str | None = None, **body: Any) -> dict[str, Any]:
        request = OrderRequest(sku_id=body.pop("sku_id", "s1"), quantity=quantity, **body)
        return await placing.place_order(self.deps, caller, request, key)

    async def settle(self) -> None:
        await asyncio.gather(*self.wallet.tasks)


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as err:
        await call
    return err.value


# -- placing ----------------------------------------------------------------------------------


async def test_placed_order_is_paid_and_holds_its_stock_until_delivered() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 3 * PRICE)
    order = await w.place(buyer, 2)
    assert order["status"] == "paid" and order["total_cents"] == 2 * PRICE
    assert w.wallet.balances["u1"] == PRICE and w.wallet.captured == {order["_id"]: 2 * PRICE}
    assert w.inventory.holds["s1"] == {order["_id"]: 2}  # held until fulfilment counts the keys out
    assert w.uow.types() == [
        "order.placed",
        "order.status-changed",
        "order.payment-requested",
        "order.status-changed",
        "order.paid",
    ]
    assert [h["status"] for h in w.store.orders[order["_id"]]["history"]] == ["pending_payment", "paid"]


async def test_short_balance_is_402_cancels_the_order_and_releases_the_hold() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", PRICE - 1)
    problem = await problem_of(w.place(buyer, 1))
    assert (problem.status_code, problem.slug) == (402, "insufficient-balance")
    [order] = w.store.orders.values()
    assert order["status"] == "cancelled" and order["decline_reason"] == "insufficient-balance"
    assert w.inventory.holds["s1"] == {}  # the key is for sale again
    assert w.wallet.balances["u1"] == PRICE - 1 and w.wallet.captured == {}


async def test_out_of_stock_is_409_and_writes_nothing() -> None:
    w = World()
    w.sku(stock=1)
    buyer = w.buyer("u1", 5 * PRICE)
    problem = await problem_of(w.place(buyer, 2))
    assert (problem.status_code, problem.slug) == (409, "out-of-stock")
    assert problem.extra == {"available": 1}
    assert w.store.orders == {} and w.uow.committed == [] and w.inventory.holds["s1"] == {}


async def test_an_out_of_stock_refusal_names_the_counters_it_was_decided_on_for_the_gateway() -> None:
    """Decision 35: the gateway keeps the refusal while these counters read the same."""
    w = World()
    w.sku(stock=1)
    problem = await problem_of(w.place(w.buyer("u1", 5 * PRICE), 2))
    validity = edge_cache.parse((problem.headers or {})[edge_cache.HEADER])
    assert validity is not None
    assert validity.facts == [("inv:{s1}:held", "0"), ("inv:{s1}:supply", "1")]
    assert not validity.vary_caller and validity.max_age_seconds == 1.0


async def test_a_refusal_after_rules_about_the_buyer_is_declared_theirs_alone() -> None:
    w = World()
    w.sku(stock=0, max_per_user=3)
    problem = await problem_of(w.place(w.buyer("u1", 5 * PRICE), 1))
    assert problem.slug == "out-of-stock"
    validity = edge_cache.parse((problem.headers or {})[edge_cache.HEADER])
    assert validity is not None and validity.vary_caller


async def test_bad_request_is_422_naming_each_field() -> None:
    w = World()
    w.sku(stock=5, recipient_fields=[RecipientField(name="mobile", label="手机号", pattern=r"1[3-9]\d{9}")])
    buyer = w.buyer("u1", 5 * PRICE)
    problem = await problem_of(w.place(buyer, 1, recipient={"mobile": "123", "extra": "x"}))
    assert problem.status_code == 422
    assert {e["field"] for e in problem.extra["errors"]} == {"recipient.mobile", "recipient.extra"}  # type: ignore[index]
    assert (await problem_of(w.place(buyer, 1, sku_id="nope"))).extra["errors"][0]["field"] == "sku_id"  # type: ignore[index]
    assert w.store.orders == {} and w.inventory.holds["s1"] == {}


async def test_same_key_is_one_order_one_debit_and_keeps_the_old_id_derivation() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    first = await w.place(buyer, 1, key="checkout-42")
    again = await w.place(buyer, 1, key="checkout-42")
    await w.settle()
    # Ids of orders placed with a key before this refactor must still be found by that key.
    assert first["_id"] == again["_id"] == hashlib.sha256(b"u1\ncheckout-42").hexdigest()[:32]
    assert len(w.store.orders) == 1 and w.wallet.balances["u1"] == 4 * PRICE
    assert w.uow.types().count("order.placed") == 1
    assert batches.batch_id_for("u1", "k") == "B" + hashlib.sha256(b"batch\nu1\nk").hexdigest()[:32]
    assert batches.batch_id_for("u1", "k") == "B" + derived_id("batch", "u1", "k")


async def test_same_key_with_another_body_is_key_reused() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    await w.place(buyer, 1, key="checkout-42")
    problem = await problem_of(w.place(buyer, 2, key="checkout-42"))
    assert (problem.status_code, problem.slug) == (422, "idempotency-key-reused")
    assert len(w.store.orders) == 1 and w.wallet.balances["u1"] == 4 * PRICE


async def test_a_failed_write_gives_the_hold_back() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)

    async def broken(tx: Tx, order: dict[str, Any]) -> None:
        raise RuntimeError("database down")

    w.store.add_order = broken  # type: ignore[method-assign, assignment]
    with pytest.raises(RuntimeError):
        await w.place(buyer, 1)
    assert w.inventory.holds["s1"] == {} and w.uow.committed == []


async def test_more_buyers_than_keys_sell_exactly_the_stock_and_conserve_money() -> None:
    w = World()
    w.sku(stock=20)
    buyers = [w.buyer(f"u{i}", PRICE) for i in range(100)]
    answers = await asyncio.gather(*(w.place(b, 1) for b in buyers), return_exceptions=True)
    paid = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if isinstance(a, Problem)]
    assert len(paid) == 20 and {a["status"] for a in paid} == {"paid"}
    assert len(refused) == 80 and {p.slug for p in refused} == {"out-of-stock"}
    assert sum(w.wallet.balances.values()) + sum(w.wallet.captured.values()) == 100 * PRICE
    assert sum(w.wallet.captured.values()) == 20 * PRICE and w.inventory.held("s1") == 20


# -- the saga ---------------------------------------------------------------------------------


async def test_payment_captured_pays_the_order_then_asks_for_delivery() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=5)
    w.wallet.online = False
    order = await w.place(w.buyer("u1", PRICE), 1)
    assert order["status"] == "pending_payment"
    mark = len(w.uow.committed)

    async def captured(tx: Tx) -> str:
        return await saga.payment_captured(tx, w.deps, order["_id"])

    assert await w.uow.run(captured) == "paid"
    stored = w.store.orders[order["_id"]]
    assert stored["status"] == "paid" and stored["paid_at"] is not None
    assert [e.type for e in w.uow.committed[mark:]] == ["order.status-changed", "order.paid"]
    assert w.watch.published[-1] == (order["_id"], "paid")


async def test_payment_for_an_expired_order_is_refunded() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=5)
    w.wallet.online = False
    order = await w.place(w.buyer("u1", PRICE), 1)
    w.store.orders[order["_id"]]["status"] = "expired"

    async def captured(tx: Tx) -> str:
        return await saga.payment_captured(tx, w.deps, order["_id"])

    assert await w.uow.run(captured) == "refunding"
    assert w.uow.types()[-2:] == ["order.status-changed", "order.refund-requested"]


async def test_a_transition_the_table_refuses_changes_nothing() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=5)
    order = await w.place(w.buyer("u1", PRICE), 1)
    assert order["status"] == "paid"
    before = copy.deepcopy(w.store.orders)
    committed, published, holds = len(w.uow.committed), list(w.watch.published), dict(w.inventory.holds["s1"])

    async def refunded(tx: Tx) -> None:  # refunded without refunding first: not in the table
        await saga.refund_completed(tx, w.deps, order["_id"])

    async def declined_late(tx: Tx) -> None:  # a paid order is never cancelled by a decline
        await saga.payment_declined(tx, w.deps, order["_id"], "insufficient-balance")

    await w.uow.run(refunded)
    await w.uow.run(declined_late)
    assert w.store.orders == before
    assert len(w.uow.committed) == committed and w.watch.published == published
    assert w.inventory.holds["s1"] == holds


async def test_delivery_then_after_sales_refund_runs_once() -> None:
    w = World()
    w.sku(stock=5)
    order = await w.place(w.buyer("u1", PRICE), 1)

    async def step(tx: Tx) -> Any:
        await saga.delivered(tx, w.deps, order["_id"], utcnow(), "d1")
        first = await saga.after_sales_refund(tx, w.deps, order["_id"], "t1")
        second = await saga.after_sales_refund(tx, w.deps, order["_id"], "t1")
        await saga.refund_completed(tx, w.deps, order["_id"])
        return first, second

    assert await w.uow.run(step) == (True, False)
    history = [h["status"] for h in w.store.orders[order["_id"]]["history"]]
    assert history == ["pending_payment", "paid", "delivered", "refunding", "refunded"]
    assert w.uow.types().count("order.refund-requested") == 1


# -- upkeep -----------------------------------------------------------------------------------


async def test_expiry_releases_the_hold_once() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=1)
    w.wallet.online = False
    order = await w.place(w.buyer("u1", PRICE), 1)
    assert w.inventory.holds["s1"] == {order["_id"]: 1}
    assert await upkeep.expire_once(w.deps) == 0  # not due yet
    w.store.orders[order["_id"]]["expires_at"] = utcnow() - timedelta(seconds=1)
    assert await upkeep.expire_once(w.deps) == 1
    assert w.store.orders[order["_id"]]["status"] == "expired"
    assert w.inventory.holds["s1"] == {}  # for sale again
    assert w.watch.published[-1] == (order["_id"], "expired")
    assert await upkeep.expire_once(w.deps) == 0
    second = await w.place(w.buyer("u2", PRICE), 1)  # the freed key sells
    assert w.inventory.holds["s1"] == {second["_id"]: 1}


async def test_rebuild_restores_holds_redis_lost() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=5)
    w.wallet.online = False
    order = await w.place(w.buyer("u1", PRICE), 2)
    w.inventory.holds.clear()  # Redis restarted empty
    assert await upkeep.rebuild_holds(w.deps, only_missing=True) == {"s1": 2}
    assert w.inventory.holds["s1"] == {order["_id"]: 2}


# -- the order center -------------------------------------------------------------------------


async def test_buyer_cancels_an_unpaid_order_and_its_hold_goes_back() -> None:
    w = World(place_wait_seconds=0.01)
    w.sku(stock=1)
    w.wallet.online = False
    order = await w.place(w.buyer("u1", PRICE), 1)
    assert (await problem_of(orders.cancel_order(w.deps, "u2", order["_id"]))).status_code == 404
    assert await orders.cancel_order(w.deps, "u1", order["_id"]) == "cancelled"
    assert w.inventory.holds["s1"] == {}
    problem = await problem_of(orders.cancel_order(w.deps, "u1", order["_id"]))
    assert (problem.status_code, problem.slug) == (409, "cannot-cancel")


async def test_cancelling_a_paid_order_asks_fulfilment() -> None:
    w = World()
    w.sku(stock=1)
    order = await w.place(w.buyer("u1", PRICE), 1)
    assert await orders.cancel_order(w.deps, "u1", order["_id"]) == "cancel_requested"
    assert w.uow.types()[-1] == "order.cancel-requested"
    assert w.store.orders[order["_id"]]["status"] == "paid"  # fulfilment decides


async def test_urge_once_per_wait() -> None:
    w = World(urge_wait_minutes=0)
    w.sku(stock=1)
    order = await w.place(w.buyer("u1", PRICE), 1)
    urged, at = await orders.urge_order(w.deps, "u1", order["_id"])
    assert urged and w.store.orders[order["_id"]]["urged_at"] == at
    assert w.uow.types()[-1] == "order.urged"
    waiting = World(urge_wait_minutes=15)
    waiting.sku(stock=1)
    fresh = await waiting.place(waiting.buyer("u1", PRICE), 1)
    problem = await problem_of(orders.urge_order(waiting.deps, "u1", fresh["_id"]))
    assert (problem.status_code, problem.slug) == (409, "cannot-urge")


async def test_order_list_filters_and_refuses_unknown_statuses() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", PRICE)
    paid = await w.place(buyer, 1)
    with pytest.raises(Problem):
        await w.place(buyer, 1)  # balance spent: declined, cancelled
    docs, total = await orders.list_orders(w.deps, "u1", None, "completed", Paging())
    assert (docs, total) == ([], 0)
    docs, total = await orders.list_orders(w.deps, "u1", None, "awaiting_delivery", Paging())
    assert [d["_id"] for d in docs] == [paid["_id"]] and total == 1
    docs, total = await orders.list_orders(w.deps, "u1", "paid,cancelled", None, Paging(page=2, page_size=1))
    assert len(docs) == 1 and total == 2
    for status, group in [("shipped", None), (None, "nope"), ("paid", "nope")]:
        problem = await problem_of(orders.list_orders(w.deps, "u1", status, group, Paging()))
        assert problem.status_code == 422


# -- batches ----------------------------------------------------------------------------------


async def test_batch_is_one_payment_for_every_accepted_row() -> None:
    w = World()
    w.sku(stock=3)
    buyer = w.buyer("u1", 3 * PRICE)
    rows = [
        Row(number=2, sku_id="s1", quantity=1),
        Row(number=3, sku_id="nope", quantity=1),
        Row(number=4, sku_id="s1", quantity=2),
    ]
    sheet_rejects = [Rejected(5, "quantity 'x' is not a whole number")]
    batch = await batches.order_sheet(
        w.deps, buyer, rows, sheet_rejects, save_as_template="weekly", idempotency_key="b-1"
    )
    assert batch["status"] == "paid" and batch["total_cents"] == 3 * PRICE and len(batch["order_ids"]) == 2
    assert [r["row"] for r in batch["rejected"]] == [3, 5]
    assert {w.store.orders[o]["status"] for o in batch["order_ids"]} == {"paid"}
    assert w.wallet.captured == {batch["_id"]: 3 * PRICE} and w.wallet.balances["u1"] == 0
    again = await batches.order_sheet(w.deps, buyer, rows, [], save_as_template=None, idempotency_key="b-1")
    assert again["_id"] == batch["_id"] and len(w.store.orders) == 2  # a retry finds its batch
    [template] = await batches.list_templates(w.deps, "u1")
    assert template["name"] == "weekly" and len(template["rows"]) == 3


async def test_batch_the_balance_cannot_cover_is_402_and_cancels_every_order() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", PRICE)
    rows = [Row(number=2, sku_id="s1", quantity=1), Row(number=3, sku_id="s1", quantity=1)]
    problem = await problem_of(batches.place_batch(w.deps, buyer, rows, []))
    assert (problem.status_code, problem.slug) == (402, "insufficient-balance")
    [batch] = w.store.batches.values()
    assert batch["status"] == "cancelled"
    assert {w.store.orders[o]["status"] for o in batch["order_ids"]} == {"cancelled"}
    assert w.inventory.holds["s1"] == {} and w.wallet.balances["u1"] == PRICE
    assert (await problem_of(batches.get_batch(w.deps, "u1", batch["_id"]))).status_code == 402


# -- coupons at checkout ---------------------------------------------------------------------------


def first_order_coupon(w: World, *users: str, **rules: Any) -> str:
    w.store.coupons["NEW10"] = Coupon(
        code="NEW10",
        kind="fixed",
        amount_off_cents=100,
        first_order_only=True,
        expires_at=utcnow() + timedelta(days=1),
        **rules,
    )
    for user in users:
        w.store.granted[(user, "NEW10")] = 1
        w.wallet.coupons_available[(user, "NEW10")] = 1
    return "NEW10"


async def test_the_quote_and_the_order_carry_the_coupons_discount() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", PRICE)
    code = first_order_coupon(w, "u1")
    _, q = await placing.quote_order(w.deps, buyer, OrderRequest(sku_id="s1", coupon_code=code))
    assert (q.subtotal_cents, q.discount_cents, q.total_cents) == (PRICE, 100, PRICE - 100)
    order = await w.place(buyer, coupon_code=code)
    assert order["status"] == "paid" and order["total_cents"] == PRICE - 100 and order["coupon_code"] == code
    assert w.wallet.captured == {order["_id"]: PRICE - 100}
    # Used: a second order with it is refused on the field, before anything is written.
    again = await problem_of(w.place(buyer, coupon_code=code))
    assert again.status_code == 422
    assert isinstance(again.extra, dict)
    assert [(e["field"], e["reason"]) for e in again.extra["errors"]] == [("coupon_code", "first-order-only")]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("expired", "expired"),
        ("someone_elses", "not-granted-or-used-up"),
        ("below_minimum", "below-minimum-spend"),
        ("unknown", "unknown-coupon"),
    ],
)
async def test_bad_coupons_are_422_on_coupon_code(setup: str, reason: str) -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", PRICE)
    code = first_order_coupon(w, "u1" if setup != "someone_elses" else "u2", min_spend_cents=0)
    if setup == "expired":
        w.store.coupons[code] = msgspec.structs.replace(w.store.coupons[code], expires_at=utcnow() - timedelta(1))
    if setup == "below_minimum":
        w.store.coupons[code] = msgspec.structs.replace(w.store.coupons[code], min_spend_cents=PRICE + 1)
    if setup == "unknown":
        code = "NOPE"
    problem = await problem_of(w.place(buyer, coupon_code=code))
    assert problem.status_code == 422
    assert isinstance(problem.extra, dict)
    assert [(e["field"], e["reason"]) for e in problem.extra["errors"]] == [("coupon_code", reason)]
    assert w.store.orders == {} and w.inventory.holds["s1"] == {}


async def test_two_concurrent_orders_with_one_coupon_one_gets_it_the_other_is_409() -> None:
    """Both orders pass the order service's preview (they race: neither sees the other yet); the
    wallet holds the one coupon for the first placed, the other's payment is declined, its order
    cancelled and its stock released, and the buyer gets 409 coupon-unavailable."""
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    code = first_order_coupon(w, "u1")

    async def racing(user_id: str, code: str) -> int:
        return 0  # the other order is not written yet when this one is priced

    w.store.coupon_in_use = racing  # type: ignore[method-assign]
    results = await asyncio.gather(
        w.place(buyer, coupon_code=code), w.place(buyer, coupon_code=code), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Problem)]
    assert len(won) == 1 and won[0]["status"] == "paid" and won[0]["discount_cents"] == 100
    assert len(lost) == 1 and (lost[0].status_code, lost[0].slug) == (409, "coupon-unavailable")
    cancelled = [o for o in w.store.orders.values() if o["status"] == "cancelled"]
    assert len(cancelled) == 1 and w.inventory.holds["s1"] == {won[0]["_id"]: 1}
    assert sum(w.wallet.captured.values()) == PRICE - 100


async def test_an_order_after_the_coupon_was_used_is_refused_on_the_field() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    code = first_order_coupon(w, "u1")
    w.store.coupons[code] = msgspec.structs.replace(w.store.coupons[code], first_order_only=False)
    pending = await w.place(buyer, coupon_code=code, pay_with="provider", channel="alipay")
    problem = await problem_of(w.place(buyer, coupon_code=code))
    assert problem.status_code == 422
    assert isinstance(problem.extra, dict)
    assert [e["reason"] for e in problem.extra["errors"]] == ["not-granted-or-used-up"]
    # Cancelled: the coupon is the buyer's again.
    await orders.cancel_order(w.deps, "u1", pending["_id"])
    again = await w.place(buyer, coupon_code=code)
    assert again["status"] == "paid" and again["discount_cents"] == 100


async def test_a_batch_gives_its_coupon_to_the_first_row_it_applies_to() -> None:
    w = World()
    w.sku("cheap", stock=5, prices={"retail": 100, "vip": 100, "agent": 100})
    w.sku("s1", stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    first_order_coupon(w, "u1", min_spend_cents=500)
    rows = [
        Row(number=2, sku_id="cheap", quantity=1, recipient={}),
        Row(number=3, sku_id="s1", quantity=1, recipient={}),
    ]
    batch = await batches.place_batch(w.deps, buyer, rows, [], coupon_code="NEW10")
    assert batch["status"] == "paid" and batch["total_cents"] == 100 + PRICE - 100
    with_coupon = [o for o in w.store.orders.values() if o["coupon_code"]]
    assert [(o["sku_id"], o["discount_cents"]) for o in with_coupon] == [("s1", 100)]
    nowhere = await problem_of(
        batches.place_batch(w.deps, buyer, rows[:1], [], coupon_code="NEW10", idempotency_key="other")
    )
    assert nowhere.status_code == 422


# -- paying through the provider -------------------------------------------------------------------


async def test_a_provider_order_answers_pending_with_its_pay_url_and_holds_stock() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 0)
    order = await w.place(buyer, pay_with="provider", channel="alipay")
    assert order["status"] == "pending_payment" and order["pay_url"] == f"https://pay/{order['_id']}"
    assert w.inventory.holds["s1"] == {order["_id"]: 1}
    [request] = [e for e in w.uow.committed if e.type == "order.payment-requested"]
    decoded = msgspec.json.decode(request.data, type=PaymentRequested)
    assert (decoded.method, decoded.channel) == ("provider", "alipay")
    # The provider's capture pays it (as the wallet answers after the signed notification).
    await w.uow.run(lambda tx: saga.payment_captured(tx, w.deps, order["_id"]))
    assert w.store.orders[order["_id"]]["status"] == "paid"


async def test_a_provider_order_without_a_channel_is_422() -> None:
    w = World()
    w.sku(stock=5)
    problem = await problem_of(w.place(w.buyer("u1", 0), pay_with="provider"))
    assert problem.status_code == 422
    assert isinstance(problem.extra, dict)
    assert [e["field"] for e in problem.extra["errors"]] == ["channel"]


async def test_an_unpaid_provider_order_expires_and_a_late_payment_is_refunded() -> None:
    w = World(payment_timeout_minutes=0)
    w.sku(stock=5)
    order = await w.place(w.buyer("u1", 0), pay_with="provider", channel="wechat")
    assert await upkeep.expire_once(w.deps) == 1
    assert w.store.orders[order["_id"]]["status"] == "expired" and w.inventory.holds["s1"] == {}
    assert await w.uow.run(lambda tx: saga.payment_captured(tx, w.deps, order["_id"])) == "refunding"
    assert w.store.orders[order["_id"]]["status"] == "refunding"
    assert w.uow.types()[-1] == "order.refund-requested"


# -- seams: a SKU the projection has not heard of yet, Redis down --------------------------------


async def test_a_sku_the_projection_learns_of_a_moment_later_is_quoted_not_refused() -> None:
    w = World()
    buyer = w.buyer("u1", 5 * PRICE)
    assert await w.deps.skus.get("s1") is None  # asked before the event arrived: a cached miss

    async def arrives() -> None:
        await asyncio.sleep(0.1)
        w.sku(stock=5)

    late = asyncio.create_task(arrives())
    _, q = await placing.quote_order(w.deps, buyer, OrderRequest(sku_id="s1", quantity=1))
    await late
    assert q.subtotal_cents == PRICE


async def test_an_unknown_sku_is_still_422_after_the_short_wait() -> None:
    w = World(sku_wait_seconds=0.2)
    w.deps.skus = SkuCache(w.store.sku, 2.0)
    buyer = w.buyer("u1", 5 * PRICE)
    started = asyncio.get_running_loop().time()
    problem = await problem_of(placing.quote_order(w.deps, buyer, OrderRequest(sku_id="nope", quantity=1)))
    assert problem.status_code == 422 and problem.extra["errors"][0]["field"] == "sku_id"  # type: ignore[index]
    assert 0.2 <= asyncio.get_running_loop().time() - started < 1.5
    again = asyncio.get_running_loop().time()
    await problem_of(placing.quote_order(w.deps, buyer, OrderRequest(sku_id="nope", quantity=1)))
    assert asyncio.get_running_loop().time() - again < 0.1  # waited once, not per request


class DownInventory(FakeInventory):
    """Redis gone: every call fails as redis-py fails."""

    async def hold(self, sku_id: str, order_id: str, units: int) -> HoldResult:
        raise redis.exceptions.ConnectionError("Connection refused")

    async def release(self, sku_id: str, order_id: str) -> int:
        raise redis.exceptions.ConnectionError("Connection refused")

    async def stock(self, sku_id: str) -> Stock:
        raise redis.exceptions.ConnectionError("Connection refused")


async def test_redis_down_is_503_with_retry_after_on_quote_place_and_cancel() -> None:
    w = World()
    w.sku(stock=5)
    buyer = w.buyer("u1", 5 * PRICE)
    unpaid = await w.place(buyer, 1, pay_with="provider", channel="alipay")
    w.deps.inventory = DownInventory()
    w.deps.skus.forget("s1")
    for call in (
        placing.quote_order(w.deps, buyer, OrderRequest(sku_id="s1", quantity=1)),
        w.place(buyer, 1),
        orders.cancel_order(w.deps, "u1", unpaid["_id"]),
    ):
        problem = await problem_of(call)
        assert (problem.status_code, problem.slug) == (503, "service-unavailable")
        assert problem.headers is not None and int(problem.headers["Retry-After"]) > 0


class LostInventory(FakeInventory):
    """Redis came back empty: a SKU's counters are missing until their owners rebuild them; the
    epoch markers say whether the owners have rebuilt this Redis yet."""

    def __init__(self, supply: dict[str, int], epochs: set[str]) -> None:
        super().__init__()
        self.counted_supply = supply
        self.epochs = epochs
        self.holds.clear()

    async def hold(self, sku_id: str, order_id: str, units: int) -> HoldResult:
        if sku_id not in self.holds:
            return HoldResult(ok=False, units=0, missing="held")
        if sku_id not in self.supply:
            seen = ((f"inv:{{{sku_id}}}:held", str(self.held(sku_id))), (f"inv:{{{sku_id}}}:supply", None))
            return HoldResult(ok=False, units=0, missing="supply", seen=seen)
        return await super().hold(sku_id, order_id, units)

    async def epoch_known(self, marker: str) -> bool:
        return marker in self.epochs

    async def epoch(self, marker: str) -> str | None:
        return "1" if marker in self.epochs else None


async def test_lost_counters_sell_nothing_until_rebuilt_from_the_owners() -> None:
    """Issue 12: after Redis restarted empty, a missing `held` read as zero sold the stock of every
    open order a second time. Now: 503 until the owners rebuilt, the SKU's holds counted from the
    open orders, then only what is really left sells."""
    w = World(place_wait_seconds=0.01)
    w.sku(stock=3)
    w.wallet.online = False
    open_order = await w.place(w.buyer("u1", PRICE), 2)
    lost = LostInventory(supply={}, epochs=set())
    w.deps.inventory = lost
    buyer = w.buyer("u2", 5 * PRICE)

    problem = await problem_of(w.place(buyer, 1, key="k"))  # nothing rebuilt yet
    assert (problem.status_code, problem.headers) == (503, {"Retry-After": "1"})
    lost.epochs.add(EPOCH_HELD)  # the order side is rebuilt: this SKU's holds come from its orders
    problem = await problem_of(w.place(buyer, 1, key="k"))
    assert problem.status_code == 503  # the vault's side is not
    assert lost.holds["s1"] == {open_order["_id"]: 2}
    lost.epochs.add(EPOCH_SUPPLY)  # supply rebuilt, and this SKU has none: out of stock
    refused = await problem_of(w.place(buyer, 1, key="k"))
    assert refused.status_code == 409
    # Kept at the gateway only while the SKU still has no supply counter and the marker stands.
    validity = edge_cache.parse((refused.headers or {})[edge_cache.HEADER])
    assert validity is not None
    assert validity.facts == [("inv:{s1}:held", "2"), ("inv:{s1}:supply", None), (EPOCH_SUPPLY, "1")]
    lost.supply["s1"] = 3
    assert (await w.place(buyer, 1, key="k2"))["status"] == "pending_payment"
    assert (await problem_of(w.place(buyer, 1, key="k3"))).slug == "out-of-stock"  # 2 + 1 of 3
    assert len(w.store.orders) == 2


# -- free trials (免费体验) ----------------------------------------------------------------------


async def test_a_trial_is_one_per_person_across_accounts_even_when_they_order_at_once() -> None:
    w = World()
    w.sku(stock=10, prices={"retail": 0, "vip": 0, "agent": 0}, trial=True, requires_real_name=True)
    unverified, a, b = w.buyer("u0", 0), w.buyer("ua", 0), w.buyer("ub", 0)
    for user in ("ua", "ub"):  # two accounts of one person
        await w.store.mark_verified(None, user, person="person-1")  # type: ignore[arg-type]
    refused = await problem_of(w.place(unverified))
    assert refused.status_code == 422 and "实名" in str(refused.extra)
    assert "one unit" in str((await problem_of(w.place(a, quantity=2))).extra)

    outcomes = await asyncio.gather(w.place(a), w.place(b), return_exceptions=True)
    await w.settle()
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, Problem)]
    assert len(won) == 1 and won[0]["total_cents"] == 0 and len(lost) == 1
    assert lost[0].status_code == 422 and "one per person" in str(lost[0].extra)
    assert "one per person" in str((await problem_of(w.place(a))).extra)
    assert len(w.store.orders) == 1 and w.inventory.held("s1") == 1
    # Not through a batch either (one per person is claimed where single orders are placed).
    rows = [Row(number=2, sku_id="s1", quantity=1)]
    batch = await batches.order_sheet(w.deps, b, rows, [], save_as_template=None, idempotency_key=None)
    assert batch["status"] == "rejected" and "free trial" in batch["rejected"][0]["reason"]


def trial_world(**settings: Any) -> World:
    w = World(**settings)
    w.sku(stock=10, prices={"retail": 0, "vip": 0, "agent": 0}, trial=True, requires_real_name=True)
    return w


async def verified(w: World, user_id: str, person: str = "person-1") -> Caller:
    await w.store.mark_verified(None, user_id, person=person)  # type: ignore[arg-type]
    return w.buyer(user_id, 0)


async def test_a_trial_cancelled_or_expired_unpaid_is_given_back_in_the_same_transaction() -> None:
    w = trial_world(place_wait_seconds=0.01)
    w.wallet.online = False  # the orders stay unpaid
    a = await verified(w, "ua")
    order = await w.place(a)
    assert w.store.trials == {("s1", "person-1"): order["_id"]}
    assert await orders.cancel_order(w.deps, "ua", order["_id"]) == "cancelled"
    assert w.store.trials == {}
    again = await w.place(a)  # the same person takes the trial again
    assert w.store.trials == {("s1", "person-1"): again["_id"]}
    w.store.orders[again["_id"]]["expires_at"] = utcnow() - timedelta(seconds=1)
    assert await upkeep.expire_once(w.deps) == 1
    assert w.store.orders[again["_id"]]["status"] == "expired" and w.store.trials == {}

    # A failed move gives nothing back: the claim and the status change are one transaction.
    third = await w.place(a)

    async def cancel_then_fail(tx: Tx) -> None:
        await saga.payment_declined(tx, w.deps, third["_id"], "insufficient-balance")
        raise RuntimeError("the commit failed")

    with pytest.raises(RuntimeError):
        await w.uow.run(cancel_then_fail)
    assert w.store.orders[third["_id"]]["status"] == "pending_payment"
    assert w.store.trials == {("s1", "person-1"): third["_id"]}


async def test_a_trial_refunded_undelivered_is_given_back_once_and_a_redelivery_takes_no_new_claim() -> None:
    w = trial_world()
    a = await verified(w, "ua")
    first = await w.place(a)
    assert first["status"] == "paid" and first["trial"] is True

    async def out_of_stock(tx: Tx) -> None:
        await saga.delivery_failed(tx, w.deps, first["_id"], "out of stock")

    async def refunded(tx: Tx) -> None:
        await saga.refund_completed(tx, w.deps, first["_id"])

    await w.uow.run(out_of_stock)
    assert w.store.trials == {("s1", "person-1"): first["_id"]}  # refunding: not final yet
    await w.uow.run(refunded)
    assert w.store.orders[first["_id"]]["status"] == "refunded" and w.store.trials == {}

    second = await w.place(a)  # taken again, by a new order
    mark = len(w.uow.committed)
    await w.uow.run(refunded)  # the first order's refund event, delivered again
    assert w.store.trials == {("s1", "person-1"): second["_id"]}  # the new claim stays
    assert len(w.uow.committed) == mark


async def test_a_delivered_trial_keeps_its_claim_even_when_after_sales_refunds_it() -> None:
    w = trial_world()
    a = await verified(w, "ua")
    order = await w.place(a)

    async def delivered_then_refunded(tx: Tx) -> None:
        await saga.delivered(tx, w.deps, order["_id"], utcnow(), "d1")
        assert await saga.after_sales_refund(tx, w.deps, order["_id"], "t1")
        await saga.refund_completed(tx, w.deps, order["_id"])

    await w.uow.run(delivered_then_refunded)
    assert w.store.orders[order["_id"]]["status"] == "refunded"
    assert w.store.trials == {("s1", "person-1"): order["_id"]}
    assert "one per person" in str((await problem_of(w.place(a))).extra)


def test_which_ends_give_a_trial_back() -> None:
    never: dict[str, object] = {"history": [{"status": "pending_payment"}, {"status": "paid"}]}
    had_it: dict[str, object] = {"history": [{"status": "paid"}, {"status": "delivered"}, {"status": "refunding"}]}
    assert {s for s in Status if domain.gives_trial_back(s, never)} == {
        Status.CANCELLED,
        Status.EXPIRED,
        Status.REFUNDED,
    }
    assert not any(domain.gives_trial_back(s, had_it) for s in Status)
    assert domain.was_delivered({"delivered_at": utcnow()})


# -- expected delivery time (预计到账时间) -------------------------------------------------------


async def test_an_order_promises_the_observed_eta_else_the_staffs_and_urging_opens_after_it() -> None:
    w = World()
    w.sku("s1", stock=10, eta_seconds=600)
    w.sku("s2", stock=10, eta_seconds=600)
    w.store.observed["s2"] = 30  # recent deliveries of s2 took 30 s (p90)
    buyer = w.buyer("u1", 10 * PRICE)
    staff = await w.place(buyer, sku_id="s1")
    seen = await w.place(buyer, sku_id="s2")
    await w.settle()
    assert (staff["eta_seconds"], seen["eta_seconds"]) == (600, 30)
    paid = await orders.get_order(w.deps, "u1", staff["_id"])
    assert domain.eta_at(paid) == paid["paid_at"] + timedelta(seconds=600)
    refused = await problem_of(orders.urge_order(w.deps, "u1", staff["_id"]))
    assert refused.status_code == 409 and "expected by" in str(refused.detail)
    w.store.orders[staff["_id"]]["paid_at"] -= timedelta(seconds=601)  # the ETA has passed
    urged, _ = await orders.urge_order(w.deps, "u1", staff["_id"])
    assert urged


def test_p90_of_delivery_times() -> None:
    assert domain.p90([1.0, 2.0]) is None  # too few to say
    assert domain.p90([float(s) for s in range(1, 11)]) == 9
    assert domain.p90([0.2, 0.3, 0.4]) == 1  # rounded up to whole seconds
