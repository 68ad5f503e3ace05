"""Events of the support service (topic `support.events`), and the PUBLIC partner event schema.

`support.reissue-requested` and `support.refund-approved` are keyed by order id, so they share
the order's partition order with `order.events`. Support emits each at most once per ticket, and
a refund at most once per order: the ticket's resolution (and, for refunds, the order's refund
mark) are guarded status changes in the same transaction as the outbox record.

`support.article-changed` and `support.announcement-changed` carry the whole public state of a
help-center article or an announcement after every create, edit, (un)publication or deletion, in
the transaction that made it; `published` false means the public no longer sees it. Keyed by the
article's or announcement's id, so one document's changes stay in order; `updated_at` grows with
every change, so a projection keeps the newest (a replayed older change never winds it back).

`PartnerOrderEvent` is not an internal event: it is the flat, versioned JSON that partners read
from their own topic `partner.{partner_user_id}.order-events.v1` and receive on their webhooks.
It has no envelope, so partners depend on nothing internal; rename nothing in it without a new
topic version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from shared.contracts import topics
from shared.contracts.registry import Event, event

TicketKind = Literal["invalid_key", "not_received", "wrong_amount", "other"]
ResolveAction = Literal["reissue", "refund", "reject"]


@event("support.ticket-opened", topic=topics.SUPPORT, key="order_id")
class TicketOpened(Event, frozen=True, kw_only=True):
    """An after-sales request (售后申请) on a buyer's own order. No description or evidence here."""

    ticket_id: str
    order_id: str
    user_id: str
    kind: TicketKind


@event("support.reissue-requested", topic=topics.SUPPORT, key="order_id")
class ReissueRequested(Event, frozen=True, kw_only=True):
    """Staff resolved a ticket with a re-issue (补发): fulfilment delivers `quantity` replacement
    keys once per ticket and marks the order's previous keys disputed."""

    ticket_id: str
    order_id: str
    user_id: str
    sku_id: str
    quantity: int


@event("support.refund-approved", topic=topics.SUPPORT, key="order_id")
class RefundApproved(Event, frozen=True, kw_only=True):
    """Staff resolved a ticket with a refund: the order goes to refunding and the wallet gives
    `amount_cents` back once (support approves at most one refund per order)."""

    ticket_id: str
    order_id: str
    user_id: str
    amount_cents: int


@event("support.ticket-resolved", topic=topics.SUPPORT, key="order_id")
class TicketResolved(Event, frozen=True, kw_only=True):
    """Every resolution, including `reject`, for reports and audits. Carries no note text."""

    ticket_id: str
    order_id: str
    user_id: str
    action: ResolveAction
    resolved_by: str


@event("support.article-changed", topic=topics.SUPPORT, key="article_id")
class ArticleChanged(Event, frozen=True, kw_only=True):
    """A help-center article (帮助中心) was created, edited, published, unpublished or deleted:
    its public fields as they are now. `published` false: the public no longer sees it
    (unpublished, or `deleted`); the other fields then keep their last values."""

    article_id: str
    published: bool
    deleted: bool = False
    title: str
    body: str
    category: str
    position: int = 0
    updated_at: datetime


@event("support.announcement-changed", topic=topics.SUPPORT, key="announcement_id")
class AnnouncementChanged(Event, frozen=True, kw_only=True):
    """An announcement (平台公告) was created, edited, published, unpublished or deleted: its
    public fields as they are now. `published` false: the public no longer sees it."""

    announcement_id: str
    published: bool
    deleted: bool = False
    title: str
    body: str
    pinned: bool = False
    published_at: datetime | None = None
    updated_at: datetime


# -- public partner feed --------------------------------------------------------------------

PARTNER_EVENT_TYPE = "order.status-changed"


class PartnerOrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One status change of an order a partner placed, as that partner receives it (its own Kafka
    topic `partner.{partner_user_id}.order-events.v1`, key = order id; and its webhooks, signed).
    Never card keys, never another customer's data. `event_id` is unique per change, and a replay
    publishes it again unchanged: deduplicate on it."""

    event_id: str
    type: str = PARTNER_EVENT_TYPE
    occurred_at: datetime
    order_id: str
    partner_user_id: str
    status: str
    sku_id: str
    quantity: int
    total_cents: int
    site: str | None = None
    """The agent's sub-site (slug) the order was placed on; null on the main site."""


def partner_event_schema() -> dict[str, object]:
    schema: dict[str, object] = msgspec.json.schema(PartnerOrderEvent)
    return schema
