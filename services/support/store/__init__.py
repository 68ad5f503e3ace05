"""Every database call of the support service: one `SupportStore` (held in `SupportDeps`) made
of a part per context, so a use case's unit test can pass an in-memory fake instead."""

from __future__ import annotations

from datetime import timedelta

from services.support.store.content import ContentKind, ContentStore
from services.support.store.feed import FeedStore
from services.support.store.notifications import NotificationStore
from services.support.store.projections import ProjectionStore
from services.support.store.schema import (
    ANNOUNCEMENTS,
    CONTACTS,
    DELIVERIES,
    EVIDENCE_BUCKET,
    FEED_REPLAYS,
    HELP_ARTICLES,
    INDEXES,
    NOTIFICATIONS,
    ORDERS,
    PARTNER_EVENTS,
    PARTNER_FEEDS,
    TICKETS,
    URGES,
    WEBHOOKS,
)
from services.support.store.tickets import TicketStore
from services.support.store.webhooks import WebhookStore
from shared.mongo import Mongo

__all__ = [
    "ANNOUNCEMENTS",
    "CONTACTS",
    "DELIVERIES",
    "EVIDENCE_BUCKET",
    "FEED_REPLAYS",
    "HELP_ARTICLES",
    "INDEXES",
    "NOTIFICATIONS",
    "ORDERS",
    "PARTNER_EVENTS",
    "PARTNER_FEEDS",
    "TICKETS",
    "URGES",
    "WEBHOOKS",
    "ContentKind",
    "SupportStore",
    "sweep_orphan_evidence",
]


class SupportStore(TicketStore, ProjectionStore, ContentStore, NotificationStore, WebhookStore, FeedStore):
    """`SupportStore(db)`: tickets and evidence, projections and urges, content, notifications,
    webhooks and their deliveries, partners' feeds and replays."""


async def sweep_orphan_evidence(mongo: Mongo, *, older_than: timedelta) -> int:
    """The evidence sweep on a bare database handle (its integration test; ops scripts)."""
    return await SupportStore(mongo.db).remove_orphan_evidence(older_than=older_than)
