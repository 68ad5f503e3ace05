"""The wallet service's MongoDB collections and indexes (database `kameng_wallet`), and every
database call it makes (`WalletStore`, held in `WalletDeps`).

- `accounts`   one per user: `balance_cents`, `points`, `paid_orders` (for first-order coupons).
               Platform accounts (`platform:revenue`, `platform:refunds`, `platform:cash:<channel>`,
               `platform:points`) have no document: their balance is the sum of their entries, so
               no payment ever waits on a platform-wide hot document.
- `ledger`     append-only entries; every movement writes its pair (or triple) in one insert_many,
               each entry with a unique idempotency `key`. Entries of one movement sum to zero
               (built by `domain.postings`).
- `topups`     top-ups and their provider trade numbers, status (`domain.TOPUP`) and audit of
               manual approvals.
- `payment_declines`  declined payment requests, by order id (so a duplicate request is answered
               from the record, never re-evaluated against a balance that has changed since).
- `coupons`, `coupon_grants` (`<code>:<user>`: total, available, held, used), `coupon_holds`
               (by order id: held -> consumed | released, or rejected; `domain.HOLD`).
- `order_payments` orders paid through the provider (by order id): trade numbers, pay_url, the
               payment request, status (`domain.TOPUP`: pending -> succeeded | failed).
- `idempotency` top-ups created with an Idempotency-Key (`shared.idempotency`, scope `topup`).

Writes take the caller's `Tx` (its session, so they commit or abort together); reads outside a
transaction use the store's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import InsertOne, ReturnDocument, UpdateOne

from services.wallet.domain import (
    HOLD,
    PROVIDER_CHANNELS,
    TOPUP,
    Entry,
    HoldStatus,
    ReportLine,
    TopupStatus,
    month_of,
)
from shared import idempotency
from shared.messaging.outbox import Tx
from shared.mongo import Index

ACCOUNTS = "accounts"
LEDGER = "ledger"
TOPUPS = "topups"
DECLINES = "payment_declines"
COUPONS = "coupons"
GRANTS = "coupon_grants"
HOLDS = "coupon_holds"
ORDER_PAYMENTS = "order_payments"

INDEXES: list[Index] = [
    Index(ORDER_PAYMENTS, [("status", 1), ("created_at", 1)]),
    Index(LEDGER, [("key", 1)], {"unique": True}),
    Index(LEDGER, [("account", 1), ("at", -1)]),
    Index(TOPUPS, [("status", 1), ("created_at", 1)]),
    Index(TOPUPS, [("user_id", 1), ("created_at", -1)]),
    Index(GRANTS, [("user_id", 1)]),
    Index(COUPONS, [("grant_on_signup", 1)]),
]

Db = AsyncIOMotorDatabase[Any]
Doc = dict[str, Any]

TOPUP_SCOPE = "topup"
"""The idempotency scope of top-ups (records `topup:<user>:<key digest>`)."""
LIST_LIMIT = 200
COUPON_LIST_LIMIT = 500


def grant_id(code: str, user_id: str) -> str:
    return f"{code}:{user_id}"


class WalletStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    # -- accounts ---------------------------------------------------------------------------------

    async def open_account(self, tx: Tx, user_id: str, now: datetime) -> bool:
        """Open `user_id`'s account once (an upsert); False when it exists already."""
        result = await tx.db[ACCOUNTS].update_one(
            {"_id": user_id},
            {"$setOnInsert": {"balance_cents": 0, "points": 0, "paid_orders": 0, "opened_at": now}},
            upsert=True,
            session=tx.session,
        )
        return result.upserted_id is not None

    async def account(self, user_id: str, tx: Tx | None = None) -> Doc | None:
        db, session = (tx.db, tx.session) if tx is not None else (self.db, None)
        doc: Doc | None = await db[ACCOUNTS].find_one({"_id": user_id}, session=session)
        return doc

    async def debit(self, tx: Tx, user_id: str, amount_cents: int, *, first_paid_order: bool) -> Doc | None:
        """Take `amount_cents` and count a paid order, only if the balance covers it (and, for a
        first-order coupon, only if nothing was paid yet): the account after, or None."""
        guard: Doc = {"_id": user_id, "balance_cents": {"$gte": amount_cents}}
        if first_paid_order:
            guard["paid_orders"] = 0  # two first orders racing: only one gets the first-order coupon
        doc: Doc | None = await tx.db[ACCOUNTS].find_one_and_update(
            guard,
            {"$inc": {"balance_cents": -amount_cents, "paid_orders": 1}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def credit(self, tx: Tx, user_id: str, amount_cents: int, points: int = 0) -> Doc | None:
        """Add money (and points) to an account: the account after, None when there is none."""
        inc = {"balance_cents": amount_cents, **({"points": points} if points else {})}
        doc: Doc | None = await tx.db[ACCOUNTS].find_one_and_update(
            {"_id": user_id}, {"$inc": inc}, return_document=ReturnDocument.AFTER, session=tx.session
        )
        return doc

    # -- ledger -----------------------------------------------------------------------------------

    async def entry(self, tx: Tx, key: str) -> Doc | None:
        """The entry booked with `key`: by this transaction (not written yet, see `book`) or before."""
        booked: Doc | None = tx.memo.get((LEDGER, key))
        if booked is not None:
            return booked
        doc: Doc | None = await tx.db[LEDGER].find_one({"key": key}, session=tx.session)
        return doc

    async def book(self, tx: Tx, entries: Sequence[Entry]) -> None:
        """Append a movement's entries, written with the transaction's other bookings in one
        insert at its end (`Tx.later`: a batch of payments is one ledger write). A key booked
        before still fails on the unique index then, and aborts the whole transaction, money
        movements included; `entry` sees this transaction's bookings through `Tx.memo`."""
        for entry in entries:
            tx.memo[(LEDGER, entry["key"])] = entry
            tx.later(LEDGER, InsertOne(entry))

    async def ledger_page(self, user_id: str, skip: int, limit: int) -> tuple[list[Doc], int]:
        cursor = self.db[LEDGER].find({"account": user_id}).sort([("at", -1), ("_id", -1)]).skip(skip)
        items = await cursor.limit(limit).to_list(length=limit)
        total = await self.db[LEDGER].count_documents({"account": user_id})
        return items, total

    async def report_lines(self, user_id: str, since: datetime) -> list[ReportLine]:
        cursor = self.db[LEDGER].find(
            {"account": user_id, "kind": {"$in": ["payment", "refund"]}, "at": {"$gte": since}},
            {"amount_cents": 1, "kind": 1, "category_id": 1, "at": 1},
        )
        return [
            ReportLine(
                month=month_of(d["at"]),
                category_id=d.get("category_id") or "uncategorised",
                amount_cents=d["amount_cents"],
                kind=d["kind"],
            )
            async for d in cursor
        ]

    # -- payment declines ---------------------------------------------------------------------------

    async def declined(self, tx: Tx, order_id: str) -> bool:
        return await tx.db[DECLINES].find_one({"_id": order_id}, {"_id": 1}, session=tx.session) is not None

    async def record_decline(self, tx: Tx, decline: Doc) -> None:
        await tx.db[DECLINES].insert_one(decline, session=tx.session)

    # -- top-ups ------------------------------------------------------------------------------------

    async def topup(self, topup_id: str, *, user_id: str | None = None) -> Doc | None:
        query: Doc = {"_id": topup_id, **({"user_id": user_id} if user_id is not None else {})}
        doc: Doc | None = await self.db[TOPUPS].find_one(query)
        return doc

    async def add_topup(self, tx: Tx, doc: Doc) -> None:
        await tx.db[TOPUPS].insert_one(doc, session=tx.session)

    async def move_topup(self, tx: Tx, topup_id: str, target: TopupStatus, fields: Doc) -> Doc | None:
        """Move a top-up to `target` if `domain.TOPUP` allows it from its status: the top-up after,
        or None when it was not in a status `target` may follow."""
        doc: Doc | None = await tx.db[TOPUPS].find_one_and_update(
            {"_id": topup_id, **TOPUP.guard(target)},
            {"$set": {"status": target.value, **fields}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def topups(self, status: str, *, channel: str | None = None, user_id: str | None = None) -> list[Doc]:
        """Oldest first, at most LIST_LIMIT (the staff's work list)."""
        query: Doc = {"status": status}
        if channel:
            query["channel"] = channel
        if user_id:
            query["user_id"] = user_id
        docs: list[Doc] = await self.db[TOPUPS].find(query).sort("created_at", 1).to_list(length=LIST_LIMIT)
        return docs

    async def unanswered_topups(self, created_before: datetime) -> list[Doc]:
        """Provider top-ups still pending that were created before `created_before` (to poll)."""
        docs: list[Doc] = (
            await self.db[TOPUPS]
            .find(
                {
                    "status": TopupStatus.PENDING.value,
                    "channel": {"$in": list(PROVIDER_CHANNELS)},
                    "created_at": {"$lte": created_before},
                }
            )
            .sort("created_at", 1)
            .to_list(length=LIST_LIMIT)
        )
        return docs

    async def recall_topup(self, user_id: str, key: str | None, fp: str) -> str | None:
        """The top-up an earlier request with this Idempotency-Key created (422 for another body)."""
        return await idempotency.recall(self.db, TOPUP_SCOPE, user_id, key, fp)

    async def remember_topup(self, tx: Tx, user_id: str, key: str | None, fp: str, topup_id: str) -> None:
        await idempotency.remember(tx, TOPUP_SCOPE, user_id, key, fp, topup_id)

    # -- coupons ------------------------------------------------------------------------------------

    async def coupon(self, code: str, tx: Tx | None = None) -> Doc | None:
        db, session = (tx.db, tx.session) if tx is not None else (self.db, None)
        doc: Doc | None = await db[COUPONS].find_one({"_id": code}, session=session)
        return doc

    async def coupons(self) -> list[Doc]:
        """Newest first, at most COUPON_LIST_LIMIT."""
        docs: list[Doc] = await self.db[COUPONS].find({}).sort("created_at", -1).to_list(length=COUPON_LIST_LIMIT)
        return docs

    async def add_coupon(self, tx: Tx, doc: Doc) -> None:
        """DuplicateKeyError when the code is taken."""
        await tx.db[COUPONS].insert_one(doc, session=tx.session)

    async def change_coupon(self, tx: Tx, code: str, changes: Doc) -> Doc | None:
        """Apply `changes` and bump the revision: the coupon after, None when there is none."""
        doc: Doc | None = await tx.db[COUPONS].find_one_and_update(
            {"_id": code},
            {"$set": changes, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def signup_coupons(self, tx: Tx, now: datetime) -> list[Doc]:
        docs: list[Doc] = (
            await tx.db[COUPONS]
            .find({"grant_on_signup": True, "active": True, "expires_at": {"$gt": now}}, session=tx.session)
            .to_list(length=None)
        )
        return docs

    async def granted_totals(self, tx: Tx, code: str, user_ids: Sequence[str]) -> dict[str, int]:
        """How many of coupon `code` each user was granted so far (users without a grant left out)."""
        ids = [grant_id(code, u) for u in user_ids]
        return {g["user_id"]: g["total"] async for g in tx.db[GRANTS].find({"_id": {"$in": ids}}, session=tx.session)}

    async def add_grants(self, tx: Tx, code: str, grants: Sequence[tuple[str, int, int]]) -> None:
        """Grant `(user, already, n)`: n more to each user who had `already`. The earlier total is
        part of the filter: a concurrent grant makes it match nothing (the upsert then fails on the
        unique _id and the transaction retries with fresh numbers)."""
        ops = [
            UpdateOne(
                {"_id": grant_id(code, user_id), "total": already} if already else {"_id": grant_id(code, user_id)},
                {
                    "$inc": {"total": n, "available": n},
                    "$setOnInsert": {"code": code, "user_id": user_id, "held": 0, "used": 0},
                },
                upsert=True,
            )
            for user_id, already, n in grants
        ]
        if ops:
            await tx.db[GRANTS].bulk_write(ops, ordered=False, session=tx.session)

    async def user_coupons(self, user_id: str) -> list[Doc]:
        """The user's grants with their coupons: [{grant, coupon}]."""
        grants = await self.db[GRANTS].find({"user_id": user_id}).to_list(length=COUPON_LIST_LIMIT)
        if not grants:
            return []
        defs = {d["_id"]: d async for d in self.db[COUPONS].find({"_id": {"$in": [g["code"] for g in grants]}})}
        return [{"grant": g, "coupon": defs[g["code"]]} for g in grants if g["code"] in defs]

    async def hold_exists(self, tx: Tx, order_id: str) -> bool:
        return await tx.db[HOLDS].find_one({"_id": order_id}, {"_id": 1}, session=tx.session) is not None

    async def take_grant(self, tx: Tx, code: str, user_id: str) -> bool:
        """One available -> held, if the user has one available."""
        taken = await tx.db[GRANTS].update_one(
            {"_id": grant_id(code, user_id), "available": {"$gte": 1}},
            {"$inc": {"available": -1, "held": 1}},
            session=tx.session,
        )
        return taken.modified_count == 1

    async def add_hold(self, tx: Tx, hold: Doc) -> None:
        await tx.db[HOLDS].insert_one(hold, session=tx.session)

    async def usable_hold(self, tx: Tx, *, order_id: str, user_id: str, code: str) -> Doc | None:
        """The order's hold of `code` when its payment may consume it."""
        doc: Doc | None = await tx.db[HOLDS].find_one(
            {"_id": order_id, "code": code, "user_id": user_id, **HOLD.guard(HoldStatus.CONSUMED)},
            session=tx.session,
        )
        return doc

    async def move_hold(
        self, tx: Tx, order_id: str, target: HoldStatus, fields: Doc, *, source: HoldStatus | None = None
    ) -> Doc | None:
        """Move an order's hold to `target` if `domain.HOLD` allows it (only from `source` when
        given): the hold after, or None."""
        guard = HOLD.guard(target) if source is None else {"status": source.value}
        doc: Doc | None = await tx.db[HOLDS].find_one_and_update(
            {"_id": order_id, **guard},
            {"$set": {"status": target.value, **fields}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def settle_grant(self, tx: Tx, code: str, user_id: str, *, used: bool, from_used: bool = False) -> None:
        """One held -> used (the payment consumed it) or back to available (released); with
        `from_used`, one used -> available (its order was refunded)."""
        source = "used" if from_used else "held"
        moved = {source: -1, "used": 1} if used else {source: -1, "available": 1}
        await tx.db[GRANTS].update_one(
            {"_id": grant_id(code, user_id), source: {"$gte": 1}}, {"$inc": moved}, session=tx.session
        )

    # -- provider payments of orders ------------------------------------------------------------------

    async def order_payment(self, order_id: str, tx: Tx | None = None) -> Doc | None:
        db, session = (tx.db, tx.session) if tx is not None else (self.db, None)
        doc: Doc | None = await db[ORDER_PAYMENTS].find_one({"_id": order_id}, session=session)
        return doc

    async def add_order_payment(self, tx: Tx, doc: Doc) -> None:
        await tx.db[ORDER_PAYMENTS].insert_one(doc, session=tx.session)

    async def move_order_payment(self, tx: Tx, order_id: str, target: TopupStatus, fields: Doc) -> Doc | None:
        """Settle a provider payment once (the same lifecycle as a top-up, `domain.TOPUP`): the
        payment after, or None when it was settled already."""
        doc: Doc | None = await tx.db[ORDER_PAYMENTS].find_one_and_update(
            {"_id": order_id, **TOPUP.guard(target)},
            {"$set": {"status": target.value, **fields}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def unanswered_order_payments(self, created_before: datetime) -> list[Doc]:
        """Provider payments of orders still pending that were created before `created_before`."""
        docs: list[Doc] = (
            await self.db[ORDER_PAYMENTS]
            .find({"status": TopupStatus.PENDING.value, "created_at": {"$lte": created_before}})
            .sort("created_at", 1)
            .to_list(length=LIST_LIMIT)
        )
        return docs
