"""The support service's MongoDB collections and indexes (database `kameng_support`).

Projections support keeps from other services' events (it never reads their databases):
`orders` (order.status-changed: owner, status, SKU, quantity, total, partner key) and
`contacts` (identity: the buyer's email for notices).
"""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import new_id
from shared.mongo import Index

ANNOUNCEMENTS = "announcements"
HELP_ARTICLES = "help_articles"
TICKETS = "tickets"
TICKET_KEYS = "ticket_idempotency_keys"
URGES = "urges"
ORDERS = "orders"
CONTACTS = "contacts"
NOTIFICATIONS = "notifications"
WEBHOOKS = "webhooks"
DELIVERIES = "webhook_deliveries"
EVIDENCE_BUCKET = "evidence"

INDEXES: list[Index] = [
    Index(ANNOUNCEMENTS, [("published", 1), ("pinned", -1), ("published_at", -1)]),
    Index(HELP_ARTICLES, [("published", 1), ("category", 1), ("position", 1)]),
    Index(TICKETS, [("user_id", 1), ("created_at", -1)]),
    Index(TICKETS, [("status", 1), ("due_at", 1)]),
    Index(TICKETS, [("order_id", 1)]),
    Index(URGES, [("open", 1), ("last_urged_at", 1)]),
    Index(NOTIFICATIONS, [("user_id", 1), ("created_at", -1)]),
    Index(NOTIFICATIONS, [("email.status", 1), ("email.next_at", 1)], {"sparse": True}),
    Index(WEBHOOKS, [("partner_user_id", 1)]),
    Index(DELIVERIES, [("status", 1), ("next_attempt_at", 1)]),
    Index(DELIVERIES, [("webhook_id", 1), ("created_at", -1)]),
    Index(NOTIFICATIONS, [("claim", 1)], {"sparse": True}),
    Index(DELIVERIES, [("claim", 1)], {"sparse": True}),
]


def page_args(page: int, page_size: int) -> tuple[int, int]:
    """(skip, limit) for 1-based pages; sizes capped so one request stays one small read."""
    size = max(1, min(page_size, 100))
    return (max(page, 1) - 1) * size, size


def public_id(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A stored document as an API object: `_id` renamed to `<name>`."""
    out = {k: v for k, v in doc.items() if k != "_id"}
    out[name] = doc["_id"]
    return out


async def claim_due(
    coll: Any, query: dict[str, Any], *, sort: list[tuple[str, int]], lease: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Claim up to `limit` documents matching `query` for this worker, in three round trips:
    read candidate ids, stamp them with a fresh claim token and `lease` (fields that make them
    stop matching `query`) in one update, read back what carries our token. A document another
    replica claimed in between simply is not ours."""
    ids = [d["_id"] for d in await coll.find(query, {"_id": 1}).sort(sort).limit(limit).to_list(None)]
    if not ids:
        return []
    token = new_id()
    await coll.update_many({**query, "_id": {"$in": ids}}, {"$set": {**lease, "claim": token}})
    return await coll.find({"claim": token}).to_list(None)  # type: ignore[no-any-return]
