"""Every MongoDB call of the order service (database `kameng_order`): orders, batches, templates,
and the projections of other services' events (SKUs from catalog, buyers from identity).

`OrderStore` is held in `OrderDeps`; use cases call it, so their unit tests pass an in-memory fake.
Writes inside a unit of work take its `Tx` and run in its session. Status changes are guarded by
the domain's transition tables, so a change that does not fit the current status matches nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.order.domain import (
    BATCH_FLOW,
    HOLDING_STOCK,
    KEYED_MODES,
    ORDER_FLOW,
    PAID_STATUSES,
    USING_COUPON,
    BatchStatus,
    Status,
)
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import utcnow
from shared.contracts.wallet import CouponDefined, CouponGranted
from shared.coupons import Coupon, coupon_from
from shared.messaging.outbox import Tx
from shared.mongo import Index

ORDERS = "orders"
BATCHES = "batches"
TEMPLATES = "templates"
SKUS = "skus"
BUYERS = "buyers"
COUPONS = "coupons"
GRANTS = "coupon_grants"
SUBSCRIPTIONS = "subscriptions"
TRIALS = "trials"
"""One document per (trial SKU, verified person) holding it: `_id` `<sku>:<person>`, `order_id`."""
DELIVERY_TIMES = "delivery_times"
"""Per SKU: the latest real delivery times (paid -> delivered) and their p90."""
RUNS_KEPT = 24
"""The last runs a subscription shows (two years of a monthly one)."""

INDEXES: list[Index] = [
    Index(ORDERS, [("user_id", 1), ("created_at", -1)]),
    Index(ORDERS, [("user_id", 1), ("sku_id", 1), ("status", 1)]),
    Index(ORDERS, [("status", 1), ("expires_at", 1)]),
    Index(ORDERS, [("batch_id", 1)], {"sparse": True}),
    Index(ORDERS, [("user_id", 1), ("coupon_code", 1), ("status", 1)], {"sparse": True}),
    Index(ORDERS, [("created_at", -1)]),
    Index(ORDERS, [("status", 1), ("created_at", -1)]),
    Index(BATCHES, [("user_id", 1), ("created_at", -1)]),
    Index(TEMPLATES, [("user_id", 1), ("created_at", -1)]),
    Index(SUBSCRIPTIONS, [("user_id", 1), ("status", 1), ("created_at", -1)]),
    Index(SUBSCRIPTIONS, [("status", 1), ("next_run_at", 1)]),
    Index(TRIALS, [("order_id", 1)]),
]

TEMPLATES_LISTED = 100


class OrderStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    # -- orders ------------------------------------------------------------------------------

    async def add_order(self, tx: Tx, order: dict[str, Any]) -> None:
        """Raises DuplicateKeyError when an order with this id exists (a keyed request's twin)."""
        await tx.db[ORDERS].insert_one(order, session=tx.session)

    async def add_orders(self, tx: Tx, orders: list[dict[str, Any]]) -> None:
        await tx.db[ORDERS].insert_many(orders, session=tx.session)

    async def order(self, order_id: str, *, history: bool = True) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[ORDERS].find_one(
            {"_id": order_id}, None if history else {"history": 0}
        )
        return doc

    async def own_order(self, user_id: str, order_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[ORDERS].find_one({"_id": order_id, "user_id": user_id})
        return doc

    async def list_orders(
        self, user_id: str, statuses: list[str] | None, *, skip: int, limit: int, unrevealed: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """A buyer's orders, newest first, without their history; and how many match in all.
        `unrevealed`: only orders with keys (auto, manual) never revealed (待使用)."""
        query: dict[str, Any] = {"user_id": user_id}
        if statuses is not None:
            query["status"] = {"$in": statuses}
        if unrevealed:
            query.update({"revealed_at": None, "delivery_mode": {"$in": list(KEYED_MODES)}})
        orders = self.db[ORDERS]
        docs: list[dict[str, Any]] = (
            await orders.find(query, {"history": 0}).sort("created_at", -1).skip(skip).limit(limit).to_list(limit)
        )
        return docs, int(await orders.count_documents(query))

    async def staff_orders(self, query: dict[str, Any], *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Every buyer's orders matching `query` (the console's order search), newest first."""
        orders = self.db[ORDERS]
        docs: list[dict[str, Any]] = (
            await orders.find(query, {"history": 0}).sort("created_at", -1).skip(skip).limit(limit).to_list(limit)
        )
        return docs, int(await orders.count_documents(query))

    async def transition(
        self, tx: Tx, order_id: str, target: Status, *, reason: str | None = None, fields: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Move an order to `target` if the transitions table allows it from its current status, in
        one guarded update; returns the order as it was BEFORE (None when the move is not allowed)."""
        now = utcnow()
        entry: dict[str, Any] = {"status": target.value, "at": now}
        if reason:
            entry["reason"] = reason
        doc: dict[str, Any] | None = await tx.db[ORDERS].find_one_and_update(
            {"_id": order_id, **ORDER_FLOW.guard(target)},
            {
                "$set": {"status": target.value, "updated_at": now, **(fields or {})},
                "$push": {"history": entry},
                "$inc": {"version": 1},
            },
            session=tx.session,
            return_document=ReturnDocument.BEFORE,
        )
        return doc

    async def set_pay_url(self, tx: Tx, order_id: str, pay_url: str) -> bool:
        """Keep where the buyer pays an unpaid provider order (once: later answers change nothing)."""
        result = await tx.db[ORDERS].update_one(
            {"_id": order_id, "status": Status.PENDING_PAYMENT.value, "pay_url": None},
            {"$set": {"pay_url": pay_url, "updated_at": utcnow()}},
            session=tx.session,
        )
        return bool(result.modified_count)

    async def coupon_in_use(self, user_id: str, code: str) -> int:
        """How many of the buyer's orders hold or used coupon `code`."""
        query = {"user_id": user_id, "coupon_code": code, "status": {"$in": [s.value for s in USING_COUPON]}}
        return int(await self.db[ORDERS].count_documents(query))

    async def paid_orders(self, user_id: str) -> int:
        """Whether the buyer ever paid an order (0 or 1: enough for first-order coupons)."""
        query = {"user_id": user_id, "status": {"$in": [s.value for s in PAID_STATUSES]}}
        return int(await self.db[ORDERS].count_documents(query, limit=1))

    async def mark_urged(self, tx: Tx, order_id: str, last_urged_at: datetime | None, now: datetime) -> bool:
        """One urge per wait period: only the request that saw the last urge time records a new one."""
        result = await tx.db[ORDERS].update_one(
            {"_id": order_id, "urged_at": last_urged_at},
            {"$set": {"urged_at": now}, "$inc": {"urge_count": 1}},
            session=tx.session,
        )
        return bool(result.modified_count)

    async def mark_revealed(self, tx: Tx, order_id: str, at: datetime) -> None:
        await tx.db[ORDERS].update_one(
            {"_id": order_id, "revealed_at": None}, {"$set": {"revealed_at": at}}, session=tx.session
        )

    async def mark_cancel_requested(self, tx: Tx, order_id: str, at: datetime) -> None:
        await tx.db[ORDERS].update_one({"_id": order_id}, {"$set": {"cancel_requested_at": at}}, session=tx.session)

    async def due_unpaid(self, now: datetime, limit: int) -> list[str]:
        """Ids of unpaid orders past their payment deadline."""
        docs = (
            await self.db[ORDERS]
            .find({"status": Status.PENDING_PAYMENT.value, "expires_at": {"$lt": now}}, {"_id": 1})
            .limit(limit)
            .to_list(limit)
        )
        return [str(d["_id"]) for d in docs]

    async def units_counting_against_limit(self, user_id: str, sku_id: str) -> int:
        pipeline = [
            {
                "$match": {
                    "user_id": user_id,
                    "sku_id": sku_id,
                    "status": {"$in": [s.value for s in (*HOLDING_STOCK, Status.DELIVERED)]},
                }
            },
            {"$group": {"_id": None, "units": {"$sum": "$quantity"}}},
        ]
        rows = await self.db[ORDERS].aggregate(pipeline).to_list(1)
        return int(rows[0]["units"]) if rows else 0

    async def open_holds(self, sku_id: str | None = None) -> dict[str, dict[str, int]]:
        """sku id -> {order id: units} for every order that holds stock (of one SKU if given):
        the truth the Redis holds are rebuilt from."""
        holds: dict[str, dict[str, int]] = {}
        query: dict[str, Any] = {"status": {"$in": [s.value for s in HOLDING_STOCK]}}
        if sku_id is not None:
            query["sku_id"] = sku_id
        cursor = self.db[ORDERS].find(query, {"sku_id": 1, "quantity": 1})
        async for doc in cursor:
            holds.setdefault(doc["sku_id"], {})[doc["_id"]] = int(doc["quantity"])
        return holds

    # -- batches -----------------------------------------------------------------------------

    async def add_batch(self, tx: Tx, batch: dict[str, Any]) -> None:
        await tx.db[BATCHES].insert_one(batch, session=tx.session)

    async def batch(self, batch_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[BATCHES].find_one({"_id": batch_id})
        return doc

    async def own_batch(self, user_id: str, batch_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[BATCHES].find_one({"_id": batch_id, "user_id": user_id})
        return doc

    async def settle_batch(
        self, tx: Tx, batch_id: str, target: BatchStatus, fields: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Settle a batch's one payment once (guarded by the batch table); the batch as it was
        before, or None when it was settled already."""
        doc: dict[str, Any] | None = await tx.db[BATCHES].find_one_and_update(
            {"_id": batch_id, **BATCH_FLOW.guard(target)},
            {"$set": {"status": target.value, **(fields or {})}},
            session=tx.session,
        )
        return doc

    # -- templates ---------------------------------------------------------------------------

    async def add_template(self, doc: dict[str, Any]) -> None:
        await self.db[TEMPLATES].insert_one(doc)

    async def templates(self, user_id: str) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = (
            await self.db[TEMPLATES].find({"user_id": user_id}).sort("created_at", -1).to_list(TEMPLATES_LISTED)
        )
        return docs

    async def template(self, user_id: str, template_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[TEMPLATES].find_one({"_id": template_id, "user_id": user_id})
        return doc

    async def drop_template(self, user_id: str, template_id: str) -> bool:
        result = await self.db[TEMPLATES].delete_one({"_id": template_id, "user_id": user_id})
        return bool(result.deleted_count)

    # -- scheduled orders (自动充值) ----------------------------------------------------------

    async def add_subscription(self, doc: dict[str, Any]) -> None:
        """Raises DuplicateKeyError when a subscription with this id exists (a keyed twin)."""
        await self.db[SUBSCRIPTIONS].insert_one(doc)

    async def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[SUBSCRIPTIONS].find_one({"_id": subscription_id})
        return doc

    async def own_subscription(self, user_id: str, subscription_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[SUBSCRIPTIONS].find_one({"_id": subscription_id, "user_id": user_id})
        return doc

    async def subscriptions_of(self, user_id: str, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id, "status": "active"}
        docs: list[dict[str, Any]] = (
            await self.db[SUBSCRIPTIONS].find(query).sort("created_at", -1).skip(skip).limit(limit).to_list(limit)
        )
        return docs, int(await self.db[SUBSCRIPTIONS].count_documents(query))

    async def active_subscriptions(self, user_id: str) -> int:
        return int(await self.db[SUBSCRIPTIONS].count_documents({"user_id": user_id, "status": "active"}))

    async def end_subscription(self, user_id: str, subscription_id: str, at: datetime) -> bool:
        result = await self.db[SUBSCRIPTIONS].update_one(
            {"_id": subscription_id, "user_id": user_id, "status": "active"},
            {"$set": {"status": "cancelled", "cancelled_at": at}},
        )
        return bool(result.modified_count)

    async def claim_due_subscription(self, now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        """Take one due run for this scheduler until `lease_until`: a second scheduler (another
        replica, or this one after a crash before the lease ran out) does not take it meanwhile."""
        doc: dict[str, Any] | None = await self.db[SUBSCRIPTIONS].find_one_and_update(
            {"status": "active", "next_run_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": lease_until}},
            sort=[("next_run_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def finish_run(
        self, tx: Tx, subscription_id: str, run: int, entry: dict[str, Any], next_at: datetime
    ) -> bool:
        """Record run `run` and move on to the next one, once: only the writer that still sees
        `run` as current records it (a scheduler that ran it twice finds it moved on)."""
        result = await tx.db[SUBSCRIPTIONS].update_one(
            {"_id": subscription_id, "run": run},
            {
                "$set": {"run": run + 1, "next_run_at": next_at, "lease_until": entry["at"], "last_run": entry},
                "$push": {"runs": {"$each": [entry], "$slice": -RUNS_KEPT}},
                "$inc": {"failures": 0 if entry["outcome"] == "ok" else 1},
            },
            session=tx.session,
        )
        return bool(result.modified_count)

    async def look_again(self, subscription_id: str, run: int, at: datetime) -> None:
        """A run whose order is still unpaid is looked at again at the next tick after `at`."""
        await self.db[SUBSCRIPTIONS].update_one({"_id": subscription_id, "run": run}, {"$set": {"lease_until": at}})

    # -- expected delivery time (预计到账时间) ------------------------------------------------

    async def delivery_times(self, tx: Tx, sku_id: str) -> dict[str, Any]:
        """The SKU's latest delivery times (`samples`, their `orders`, their `p90`) as this
        transaction sees them: what an earlier event of the same batch kept, else the database."""
        kept: dict[str, Any] | None = tx.memo.get((DELIVERY_TIMES, sku_id))
        if kept is not None:
            return kept
        doc = await tx.db[DELIVERY_TIMES].find_one({"_id": sku_id}, session=tx.session) or {}
        return {
            "samples": [float(s) for s in doc.get("samples", [])],
            "orders": list(doc.get("orders", [])),
            "p90": doc.get("p90"),
        }

    def keep_delivery_times(self, tx: Tx, sku_id: str, times: dict[str, Any]) -> None:
        """Write the SKU's delivery times with the transaction, once per batch however many of
        its events added one (the whole state is set: it was computed from what this
        transaction read, and a concurrent writer of the document makes it conflict and retry)."""
        tx.memo[(DELIVERY_TIMES, sku_id)] = times
        tx.later(DELIVERY_TIMES, UpdateOne({"_id": sku_id}, {"$set": times}, upsert=True))

    async def observed_eta(self, sku_id: str) -> int | None:
        doc = await self.db[DELIVERY_TIMES].find_one({"_id": sku_id}, {"p90": 1})
        return int(doc["p90"]) if doc and doc.get("p90") is not None else None

    # -- projections of other services' events ------------------------------------------------

    async def sku(self, sku_id: str) -> SkuChanged | None:
        doc = await self.db[SKUS].find_one({"_id": sku_id})
        return sku_from_doc(doc) if doc else None

    async def upsert_sku(self, tx: Tx, sku: SkuChanged) -> bool:
        """Keep the newest revision of a SKU; an older or repeated event changes nothing."""
        doc = msgspec.to_builtins(sku)
        doc["_id"] = doc.pop("sku_id")
        try:
            result = await tx.db[SKUS].replace_one(
                {"_id": doc["_id"], "revision": {"$lt": sku.revision}}, doc, upsert=True, session=tx.session
            )
        except DuplicateKeyError:
            return False  # a newer revision is already there: the upsert's insert collided with it
        return bool(result.modified_count or result.upserted_id)

    async def buyer_verified(self, user_id: str) -> bool:
        doc = await self.db[BUYERS].find_one({"_id": user_id})
        return bool(doc and doc.get("real_name_verified"))

    async def mark_verified(self, tx: Tx, user_id: str, *, person: str | None = None) -> None:
        fields: dict[str, Any] = {"real_name_verified": True, **({"person": person} if person else {})}
        await tx.db[BUYERS].update_one({"_id": user_id}, {"$set": fields}, upsert=True, session=tx.session)

    async def buyer_person(self, user_id: str) -> str | None:
        """The verified person behind an account (identity's fingerprint), if known."""
        doc = await self.db[BUYERS].find_one({"_id": user_id}, {"person": 1})
        return str(doc["person"]) if doc and doc.get("person") else None

    async def trial_taken(self, sku_id: str, person: str) -> bool:
        return await self.db[TRIALS].find_one({"_id": f"{sku_id}:{person}"}, {"_id": 1}) is not None

    async def claim_trial(self, tx: Tx, sku_id: str, person: str, order_id: str, user_id: str) -> None:
        """One trial of a SKU per person: raises DuplicateKeyError when this person had it (a
        concurrent order from another of their accounts included)."""
        await tx.db[TRIALS].insert_one(
            {"_id": f"{sku_id}:{person}", "order_id": order_id, "user_id": user_id, "at": utcnow()},
            session=tx.session,
        )

    async def release_trial(self, tx: Tx, order_id: str) -> bool:
        """Give back the trial claimed by this order (the order ended undelivered); whether there
        was one. Matched by the order, never by person: once given back the person may claim it
        with another order, which a late or repeated release of this one must not touch."""
        result = await tx.db[TRIALS].delete_one({"order_id": order_id}, session=tx.session)
        return bool(result.deleted_count)

    async def coupon(self, code: str) -> Coupon | None:
        doc = await self.db[COUPONS].find_one({"_id": code})
        return coupon_from(doc) if doc else None

    async def upsert_coupon(self, tx: Tx, coupon: CouponDefined) -> bool:
        """Keep the highest revision of a coupon's definition; older or repeated ones change nothing."""
        doc = msgspec.to_builtins(coupon, builtin_types=(datetime,))
        doc["_id"] = doc.pop("code")
        try:
            result = await tx.db[COUPONS].replace_one(
                {"_id": doc["_id"], "revision": {"$lt": coupon.revision}}, doc, upsert=True, session=tx.session
            )
        except DuplicateKeyError:
            return False  # a newer revision is there already
        return bool(result.modified_count or result.upserted_id)

    async def coupon_granted(self, user_id: str, code: str) -> int:
        doc = await self.db[GRANTS].find_one({"_id": f"{code}:{user_id}"})
        return int(doc["total_granted"]) if doc else 0

    async def add_grant(self, tx: Tx, grant: CouponGranted) -> None:
        """Grants only grow: keep the largest total seen (events may come twice or out of order)."""
        await tx.db[GRANTS].update_one(
            {"_id": f"{grant.code}:{grant.user_id}"},
            {"$max": {"total_granted": grant.total_granted}, "$set": {"code": grant.code, "user_id": grant.user_id}},
            upsert=True,
            session=tx.session,
        )


def sku_from_doc(doc: dict[str, Any]) -> SkuChanged:
    data = {k: v for k, v in doc.items() if k != "_id"}
    data["sku_id"] = doc["_id"]
    return msgspec.convert(data, SkuChanged)


class SkuCache:
    """SKU projections kept in memory for a moment: a thousand buyers of one SKU read it once."""

    def __init__(self, load: Callable[[str], Awaitable[SkuChanged | None]], ttl_seconds: float) -> None:
        self.load = load
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, SkuChanged | None]] = {}
        # SKUs waited for in vain, until when: a batch naming one unknown SKU on many rows (or a
        # client retrying it) waits once, not once per row.
        self._given_up: dict[str, float] = {}

    async def get(self, sku_id: str) -> SkuChanged | None:
        now = time.monotonic()
        hit = self._entries.get(sku_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        sku = await self.load(sku_id)
        self._entries[sku_id] = (now + self.ttl, sku)
        return sku

    async def wait_for(self, sku_id: str, seconds: float) -> SkuChanged | None:
        """Read through the projection until the SKU appears or `seconds` pass: the one answer
        that must not come from the cache is "no such SKU" about one the catalog just made."""
        if self._given_up.get(sku_id, 0.0) > time.monotonic():
            return None
        deadline = time.monotonic() + seconds
        pause = 0.05
        while True:
            sku = await self.load(sku_id)
            if sku is not None:
                self._entries[sku_id] = (time.monotonic() + self.ttl, sku)
                return sku
            left = deadline - time.monotonic()
            if left <= 0:
                now = time.monotonic()
                if len(self._given_up) > 10_000:  # made-up ids must not grow memory without end
                    self._given_up = {k: t for k, t in self._given_up.items() if t > now}
                self._given_up[sku_id] = now + self.ttl
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.4)

    def forget(self, sku_id: str) -> None:
        self._entries.pop(sku_id, None)
        self._given_up.pop(sku_id, None)
