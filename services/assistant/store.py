"""Every MongoDB call of the assistant (database `kameng_assistant`).

It keeps projections only, learnt from events, never another service's database:
- `knowledge`  published help articles, announcements (support.article-changed,
               support.announcement-changed) and listed products' service notes
               (catalog.product-changed); a document taken down stays as a tombstone
               (`published: false`) so every replica's index sees the removal through the same
               `changed_at` cursor as an addition, and its `version` keeps an older change replayed
               later from bringing it back
- `skus`       SKU and product names and delivery mode (catalog.sku-changed; no prices at all)
- `orders`     owner, status, times, SKU, quantity and total (order events), whether an
               after-sales ticket is waiting (support events); never card keys
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from services.assistant.domain import OrderView
from shared.messaging.outbox import Tx
from shared.mongo import Index, newest_wins

KNOWLEDGE = "knowledge"
SKUS = "skus"
ORDERS = "orders"

INDEXES: list[Index] = [
    Index(KNOWLEDGE, [("changed_at", 1)]),
    Index(KNOWLEDGE, [("kind", 1), ("published", 1)]),
    Index(ORDERS, [("user_id", 1), ("created_at", -1)]),
]

Doc = dict[str, Any]


class AssistantStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    # -- knowledge --------------------------------------------------------------------------

    async def put_content(
        self,
        tx: Tx,
        kind: str,
        source_id: str,
        *,
        version: Any,
        published: bool,
        title: str,
        body: str,
        fingerprint: str,
        now: datetime,
    ) -> bool:
        """Make a document what its owner's newest event says. Nothing is written (False) when
        the stored version is newer (an older change replayed), when nothing changed (the same
        event again), or for a document never published (a draft has nothing to take down)."""
        key = f"{kind}:{source_id}"
        if not published:
            fingerprint = ""
        current = await self.db[KNOWLEDGE].find_one(
            {"_id": key}, {"version": 1, "published": 1, "fingerprint": 1}, session=tx.session
        )
        if current is None and not published:
            return False
        if current is not None:
            if current.get("version") is not None and current["version"] > version:
                return False
            if current.get("published") == published and current.get("fingerprint") == fingerprint:
                return False
        fields: Doc = {
            "kind": kind,
            "source_id": source_id,
            "version": version,
            "published": published,
            "changed_at": now,
            # A tombstone keeps no text: only the index's removal needs it.
            **({"title": title, "body": body} if published else {"body": ""}),
            "fingerprint": fingerprint,
        }
        await self.db[KNOWLEDGE].update_one({"_id": key}, {"$set": fields}, upsert=True, session=tx.session)
        return True

    async def changed_since(self, since: datetime | None) -> list[Doc]:
        """Documents changed at or after `since` (all of them when None), oldest change first."""
        query: Doc = {} if since is None else {"changed_at": {"$gte": since}}
        return await self.db[KNOWLEDGE].find(query).sort([("changed_at", 1)]).to_list(None)  # type: ignore[no-any-return]

    # -- catalog projection -----------------------------------------------------------------

    async def put_sku(self, tx: Tx, sku: Doc) -> bool:
        """Keep the highest revision of a SKU; False when this one is not newer."""
        current = await self.db[SKUS].find_one({"_id": sku["_id"]}, {"revision": 1}, session=tx.session)
        if current is not None and current["revision"] >= sku["revision"]:
            return False
        await self.db[SKUS].replace_one({"_id": sku["_id"]}, sku, upsert=True, session=tx.session)
        return True

    # -- orders projection ------------------------------------------------------------------

    async def order_placed(self, tx: Tx, order: Doc) -> None:
        """A new order: its facts, and `pending_payment` unless a status change came first.
        The order projection's writes go in one bulk write per transaction (`Tx.later`)."""
        tx.later(
            ORDERS,
            UpdateOne(
                {"_id": order["_id"]},
                {
                    "$set": {k: v for k, v in order.items() if k != "_id"},
                    "$setOnInsert": {"status": "pending_payment", "status_at": order["created_at"]},
                },
                upsert=True,
            ),
        )

    async def order_status(self, tx: Tx, order_id: str, fields: Doc, at: datetime) -> None:
        """Apply a status change unless a newer one is already there (a replay of an old event
        must not wind the projection back), decided by the database in the write itself
        (`newest_wins`; no read first). Paid and delivered times are kept once: the first."""
        changes = dict(fields)
        earliest: list[str] = []
        if fields.get("status") == "paid":
            changes["paid_at"], earliest = at, ["paid_at"]
        elif fields.get("status") == "delivered":
            changes["delivered_at"], earliest = at, ["delivered_at"]
        update = newest_wins("status_at", at, changes, earliest=earliest, on_insert={"created_at": at})
        tx.later(ORDERS, UpdateOne({"_id": order_id}, update, upsert=True))

    async def order_urged(self, tx: Tx, order_id: str, user_id: str, urged_at: datetime) -> None:
        # Deferred like the order's other writes, so it lands after an order placed in the same batch.
        tx.later(ORDERS, UpdateOne({"_id": order_id, "user_id": user_id}, {"$max": {"urged_at": urged_at}}))

    async def ticket_opened(self, tx: Tx, order_id: str, user_id: str, ticket_id: str) -> None:
        """The order has an after-sales ticket waiting (the order's own events may come later:
        the two topics are not ordered with each other)."""
        await self.db[ORDERS].update_one(
            {"_id": order_id, "user_id": user_id}, {"$set": {"open_ticket": ticket_id}}, upsert=True, session=tx.session
        )

    async def ticket_resolved(self, tx: Tx, order_id: str, ticket_id: str) -> None:
        await self.db[ORDERS].update_one(
            {"_id": order_id, "open_ticket": ticket_id}, {"$unset": {"open_ticket": ""}}, session=tx.session
        )

    async def own_order(self, user_id: str, order_id: str) -> OrderView | None:
        """The caller's order by id; someone else's order is simply not found."""
        doc = await self.db[ORDERS].find_one({"_id": order_id, "user_id": user_id})
        return (await self._views([doc]))[0] if doc else None

    async def own_orders_starting(self, user_id: str, prefix: str, limit: int = 2) -> list[OrderView]:
        query = {"user_id": user_id, "_id": {"$gte": prefix, "$lt": prefix + "g"}}
        return await self._views(await self.db[ORDERS].find(query).limit(limit).to_list(None))

    async def recent_orders(self, user_id: str, limit: int = 5) -> list[OrderView]:
        docs = await self.db[ORDERS].find({"user_id": user_id}).sort([("created_at", -1)]).limit(limit).to_list(None)
        return await self._views(docs)

    async def _views(self, docs: list[Doc]) -> list[OrderView]:
        sku_ids = list({d.get("sku_id") for d in docs if d.get("sku_id")})
        fields = {"label": 1, "delivery_mode": 1}
        skus = {s["_id"]: s async for s in self.db[SKUS].find({"_id": {"$in": sku_ids}}, fields)}
        return [
            OrderView(
                order_id=d["_id"],
                user_id=d["user_id"],
                status=d.get("status", "pending_payment"),
                sku_name=skus.get(d.get("sku_id"), {}).get("label", ""),
                quantity=int(d.get("quantity", 1)),
                total_cents=int(d.get("total_cents", 0)),
                delivery_mode=d.get("delivery_mode") or skus.get(d.get("sku_id"), {}).get("delivery_mode", "auto"),
                created_at=d.get("created_at"),
                paid_at=d.get("paid_at"),
                delivered_at=d.get("delivered_at"),
                expires_at=d.get("expires_at"),
                status_at=d.get("status_at"),
                urged_at=d.get("urged_at"),
                ticket_open=bool(d.get("open_ticket")),
            )
            for d in docs
        ]
