"""The order service's MongoDB collections: orders, and projections of other services' events
(SKUs from catalog, buyers from identity). Database `kameng_order`."""

from __future__ import annotations

from typing import Any

import msgspec
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.order.domain import HOLDING_STOCK, TRANSITIONS, Status
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import utcnow
from shared.messaging.outbox import Tx
from shared.mongo import Index

ORDERS = "orders"
SKUS = "skus"
BUYERS = "buyers"

INDEXES: list[Index] = [
    Index(ORDERS, [("user_id", 1), ("created_at", -1)]),
    Index(ORDERS, [("user_id", 1), ("sku_id", 1), ("status", 1)]),
    Index(ORDERS, [("status", 1), ("expires_at", 1)]),
    Index(ORDERS, [("batch_id", 1)], {"sparse": True}),
    Index("batches", [("user_id", 1), ("created_at", -1)]),
    Index("templates", [("user_id", 1), ("created_at", -1)]),
]

_PREDECESSORS: dict[Status, list[str]] = {
    target: [s.value for s, nexts in TRANSITIONS.items() if target in nexts] for target in Status
}


async def transition(
    tx: Tx, order_id: str, target: Status, *, reason: str | None = None, fields: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Move an order to `target` if the transitions table allows it from its current status, in
    one guarded update; returns the order as it was BEFORE (None when the move is not allowed)."""
    now = utcnow()
    entry: dict[str, Any] = {"status": target.value, "at": now}
    if reason:
        entry["reason"] = reason
    doc: dict[str, Any] | None = await tx.db[ORDERS].find_one_and_update(
        {"_id": order_id, "status": {"$in": _PREDECESSORS[target]}},
        {
            "$set": {"status": target.value, "updated_at": now, **(fields or {})},
            "$push": {"history": entry},
            "$inc": {"version": 1},
        },
        session=tx.session,
        return_document=ReturnDocument.BEFORE,
    )
    return doc


async def upsert_sku(tx: Tx, sku: SkuChanged) -> bool:
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


def sku_from_doc(doc: dict[str, Any]) -> SkuChanged:
    data = {k: v for k, v in doc.items() if k != "_id"}
    data["sku_id"] = doc["_id"]
    return msgspec.convert(data, SkuChanged)


async def units_counting_against_limit(db: Any, user_id: str, sku_id: str) -> int:
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
    rows = await db[ORDERS].aggregate(pipeline).to_list(1)
    return int(rows[0]["units"]) if rows else 0


async def open_holds(db: Any) -> dict[str, dict[str, int]]:
    """sku id -> {order id: units} for every order that holds stock: the truth the Redis holds
    are rebuilt from."""
    holds: dict[str, dict[str, int]] = {}
    cursor = db[ORDERS].find({"status": {"$in": [s.value for s in HOLDING_STOCK]}}, {"sku_id": 1, "quantity": 1})
    async for doc in cursor:
        holds.setdefault(doc["sku_id"], {})[doc["_id"]] = int(doc["quantity"])
    return holds
