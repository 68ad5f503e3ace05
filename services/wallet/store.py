"""The wallet service's MongoDB collections and indexes (database `kameng_wallet`), and its reads.

- `accounts`   one per user: `balance_cents`, `points`, `paid_orders` (for first-order coupons).
               Platform accounts (`platform:revenue`, `platform:refunds`, `platform:cash:<channel>`,
               `platform:points`) have no document: their balance is the sum of their entries, so
               no payment ever waits on a platform-wide hot document.
- `ledger`     append-only entries; every movement writes its pair (or triple) in one insert_many,
               each entry with a unique idempotency `key`. Entries of one movement sum to zero.
- `topups`     top-ups and their provider trade numbers, status and audit of manual approvals.
- `payment_declines`  declined payment requests, by order id (so a duplicate request is answered
               from the record, never re-evaluated against a balance that has changed since).
- `coupons`, `coupon_grants` (`<code>:<user>`: total, available, held, used), `coupon_holds`
               (by order id: held -> consumed | released, or rejected).
- `idempotency` responses of POSTs sent with an Idempotency-Key, by `<user>:<key>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase

from services.wallet.domain import Coupon, ReportLine, month_of
from shared.mongo import Index

ACCOUNTS = "accounts"
LEDGER = "ledger"
TOPUPS = "topups"
DECLINES = "payment_declines"
COUPONS = "coupons"
GRANTS = "coupon_grants"
HOLDS = "coupon_holds"
IDEMPOTENCY = "idempotency"

PLATFORM_REVENUE = "platform:revenue"
PLATFORM_REFUNDS = "platform:refunds"
PLATFORM_POINTS = "platform:points"


def platform_cash(channel: str) -> str:
    return f"platform:cash:{channel}"


INDEXES: list[Index] = [
    Index(LEDGER, [("key", 1)], {"unique": True}),
    Index(LEDGER, [("account", 1), ("at", -1)]),
    Index(TOPUPS, [("status", 1), ("created_at", 1)]),
    Index(TOPUPS, [("user_id", 1), ("created_at", -1)]),
    Index(GRANTS, [("user_id", 1)]),
    Index(COUPONS, [("grant_on_signup", 1)]),
]

Db = AsyncIOMotorDatabase[Any]


def coupon_from(doc: dict[str, Any]) -> Coupon:
    return Coupon(
        code=doc["_id"],
        kind=doc["kind"],
        amount_off_cents=doc.get("amount_off_cents", 0),
        percent_off_bp=doc.get("percent_off_bp", 0),
        max_discount_cents=doc.get("max_discount_cents"),
        min_spend_cents=doc.get("min_spend_cents", 0),
        sku_ids=tuple(doc.get("sku_ids", ())),
        category_ids=tuple(doc.get("category_ids", ())),
        starts_at=doc.get("starts_at"),
        expires_at=doc["expires_at"],
        per_user_limit=doc.get("per_user_limit", 1),
        first_order_only=doc.get("first_order_only", False),
        active=doc.get("active", True),
    )


async def ledger_page(db: Db, user_id: str, page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
    cursor = db[LEDGER].find({"account": user_id}).sort([("at", -1), ("_id", -1)]).skip((page - 1) * page_size)
    items = await cursor.limit(page_size).to_list(length=page_size)
    total = await db[LEDGER].count_documents({"account": user_id})
    return items, total


async def report_lines(db: Db, user_id: str, since: datetime) -> list[ReportLine]:
    cursor = db[LEDGER].find(
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


async def user_coupons(db: Db, user_id: str) -> list[dict[str, Any]]:
    grants = await db[GRANTS].find({"user_id": user_id}).to_list(length=500)
    if not grants:
        return []
    defs = {d["_id"]: d async for d in db[COUPONS].find({"_id": {"$in": [g["code"] for g in grants]}})}
    out = []
    for g in grants:
        d = defs.get(g["code"])
        if d is None:
            continue
        out.append({"grant": g, "coupon": d})
    return out
