"""The catalog service's MongoDB collections and indexes (database `kameng_catalog`).

    scenarios   {_id, name}                          通信充值
    categories  {_id, scenario_id, name}             话费充值
    products    {_id, category_id, name, description, service_notes,
                 sku_names (on-sale SKUs, for search), listed (has an on-sale SKU)}
    skus        {_id, product_id, name, face value, prices per level, tiers, delivery mode,
                 recipient fields, validity, limits, on_sale, revision}

Every SKU write bumps its `revision` and emits `catalog.sku-changed` in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from shared.contracts.catalog import RecipientField, SkuChanged, WholesaleTier
from shared.messaging.outbox import Tx
from shared.mongo import Index

SCENARIOS = "scenarios"
CATEGORIES = "categories"
PRODUCTS = "products"
SKUS = "skus"

INDEXES: list[Index] = [
    Index(CATEGORIES, [("scenario_id", 1)]),
    Index(PRODUCTS, [("category_id", 1), ("listed", 1)]),
    Index(SKUS, [("product_id", 1)]),
]

Doc = dict[str, Any]


def sku_event(sku: Doc, product: Doc, category: Doc) -> SkuChanged:
    return SkuChanged(
        sku_id=sku["_id"],
        revision=sku["revision"],
        name=sku["name"],
        product_id=product["_id"],
        product_name=product["name"],
        category_id=category["_id"],
        category_name=category["name"],
        scenario_id=category["scenario_id"],
        face_value_cents=sku["face_value_cents"],
        prices=dict(sku["prices"]),
        wholesale=[WholesaleTier(**t) for t in sku.get("wholesale", [])],
        delivery_mode=sku["delivery_mode"],
        recipient_fields=[msgspec.convert(f, RecipientField) for f in sku.get("recipient_fields", [])],
        validity_days=sku.get("validity_days"),
        max_per_order=sku.get("max_per_order"),
        max_per_user=sku.get("max_per_user"),
        requires_real_name=bool(sku.get("requires_real_name", False)),
        on_sale=bool(sku.get("on_sale", True)),
    )


async def refresh_product(tx: Tx, product_id: str) -> None:
    """Keep the product's search names and listing flag in step with its on-sale SKUs."""
    names = [
        s["name"]
        async for s in tx.db[SKUS].find({"product_id": product_id, "on_sale": True}, {"name": 1}, session=tx.session)
    ]
    await tx.db[PRODUCTS].update_one(
        {"_id": product_id}, {"$set": {"sku_names": names, "listed": bool(names)}}, session=tx.session
    )


async def republish(tx: Tx, product_ids: list[str]) -> int:
    """A product or category changed name or place: every SKU under it gets a new revision, so
    the projections downstream (order's) see the change."""
    count = 0
    products = {p["_id"]: p async for p in tx.db[PRODUCTS].find({"_id": {"$in": product_ids}}, session=tx.session)}
    category_ids = list({p["category_id"] for p in products.values()})
    categories = {c["_id"]: c async for c in tx.db[CATEGORIES].find({"_id": {"$in": category_ids}}, session=tx.session)}
    skus = [s async for s in tx.db[SKUS].find({"product_id": {"$in": product_ids}}, {"_id": 1}, session=tx.session)]
    for sku in skus:
        sku = await tx.db[SKUS].find_one_and_update(
            {"_id": sku["_id"]}, {"$inc": {"revision": 1}}, return_document=True, session=tx.session
        )
        product = products[sku["product_id"]]
        tx.emit(sku_event(sku, product, categories[product["category_id"]]))
        count += 1
    return count


def name_filter(q: str) -> Doc:
    """Case-insensitive substring match on product and SKU names; Chinese works as is (no word
    splitting needed for a substring). Escaped: the buyer's text is never a pattern."""
    pattern = {"$regex": re.escape(q.strip()), "$options": "i"}
    return {"$or": [{"name": pattern}, {"sku_names": pattern}]}
