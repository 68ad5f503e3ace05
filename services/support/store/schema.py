"""Support's collections (database `kameng_support`) and their indexes.

Projections support keeps from other services' events (it never reads their databases):
`orders` (order.status-changed: owner, status, SKU, quantity, total, partner key) and
`contacts` (identity: the buyer's email for notices).
"""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase

from shared.messaging.outbox import Tx
from shared.mongo import Index

ANNOUNCEMENTS = "announcements"
HELP_ARTICLES = "help_articles"
TICKETS = "tickets"
URGES = "urges"
ORDERS = "orders"
CONTACTS = "contacts"
NOTIFICATIONS = "notifications"
WEBHOOKS = "webhooks"
DELIVERIES = "webhook_deliveries"
EVIDENCE_BUCKET = "evidence"
PARTNER_FEEDS = "partner_feeds"
PARTNER_EVENTS = "partner_events"
"""Every public event published to a partner's topic, kept for replays (`stamp`: publish order)."""
FEED_REPLAYS = "feed_replays"
PARTNER_EVENTS_KEEP_DAYS = 31
"""A replay reaches 30 days back; a day more covers clocks and slow replays."""

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
    Index(PARTNER_EVENTS, [("partner_user_id", 1), ("stamp", 1)]),
    Index(PARTNER_EVENTS, [("kept_at", 1)], {"expireAfterSeconds": PARTNER_EVENTS_KEEP_DAYS * 24 * 3600}),
    Index(FEED_REPLAYS, [("status", 1), ("requested_at", 1)]),
]


class Collections:
    """The database handle every part of the store shares."""

    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db


def session_of(tx: Tx | None) -> Any:
    """The transaction's session for a call made inside one, None outside."""
    return tx.session if tx is not None else None
