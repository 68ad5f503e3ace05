"""What other services' events change in support: the order and contact projections, the
notices, the partner feed and partners' feed topics. Each runs in the consumer's transaction with the inbox, so every
effect happens once per event however often it is delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import Binary

from services.support import domain
from services.support.deps import SupportDeps
from services.support.usecases import feed
from services.support.usecases.notifications import notify
from shared.contracts.identity import ApiKeyCreated, ContactChanged, UserRegistered
from shared.contracts.order import OrderStatusChanged
from shared.messaging.outbox import Tx


async def keep_contact(deps: SupportDeps, tx: Tx, event: UserRegistered | ContactChanged) -> None:
    """Where to email the buyer. Only fields the event carries are changed."""
    fields = {k: v for k, v in (("email", event.email), ("phone", event.phone)) if v is not None}
    if fields:
        await deps.store.save_contact(event.user_id, fields, tx=tx)


async def follow_order(
    deps: SupportDeps, tx: Tx, event: OrderStatusChanged, *, event_id: str, occurred_at: datetime
) -> None:
    """Project the order, close its urge once it settles, tell the buyer, and put a partner's
    order change on the public feed and in the partner's webhook queue."""
    await deps.store.project_order(
        event.order_id,
        {
            "user_id": event.user_id,
            "status": event.status,
            "sku_id": event.sku_id,
            "quantity": event.quantity,
            "total_cents": event.total_cents,
            "partner_key_id": event.partner_key_id,
            "at": event.at,
        },
        tx=tx,
    )

    if event.status in domain.SETTLED_ORDER_STATUSES:
        await deps.store.settle_urge(event.order_id, at=event.at, because=event.status, tx=tx)

    notice = domain.order_notice(event)
    if notice is not None:
        await notify(
            deps,
            tx,
            user_id=event.user_id,
            kind=f"order.{event.status}",
            subject=notice[0],
            body=notice[1],
            ref={"order_id": event.order_id},
        )

    # The partner feed: written to support's outbox in this same transaction, so each status
    # change is on the partner's own topic once (the inbox stops a redelivered event here).
    public = domain.partner_event(event, event_id=event_id)
    if public is not None:
        value = domain.encode_public(public)
        await feed.publish_partner_event(deps, tx, public, value)
        await _queue_webhook_deliveries(deps, tx, event, public.event_id, value, at=occurred_at)


async def _queue_webhook_deliveries(
    deps: SupportDeps, tx: Tx, event: OrderStatusChanged, event_id: str, value: bytes, *, at: datetime
) -> None:
    """One delivery record per subscribed webhook of the partner, keyed (webhook, event): the
    dispatcher (usecases/webhooks.py) sends it until the receiver says 2xx."""
    hooks = await deps.store.webhooks_of(event.user_id, tx=tx)
    records: list[dict[str, Any]] = [
        {
            "_id": f"{hook['_id']}:{event_id}",
            "webhook_id": hook["_id"],
            "partner_user_id": event.user_id,
            "event_id": event_id,
            "order_id": event.order_id,
            "status_of_order": event.status,
            "payload": Binary(value),
            "status": domain.DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "log": [],
        }
        for hook in hooks
        if domain.webhook_wants(hook["events"], event.status)
    ]
    await deps.store.queue_deliveries(records, tx=tx)


async def open_partner_feed(deps: SupportDeps, tx: Tx, event: ApiKeyCreated, *, at: datetime) -> None:
    """A partner API key: the account's feed topic exists from now on (created once)."""
    await feed.open_feed(deps, tx, event.user_id, key_id=event.key_id, at=at)
