"""The support service's Kafka event handlers (each runs in a transaction with the inbox, so
every effect below happens once per event however often it is delivered)."""

from __future__ import annotations

from typing import Any

from bson import Binary

from services.support import domain
from services.support.notices import notify
from services.support.store import CONTACTS, DELIVERIES, ORDERS, URGES, WEBHOOKS
from shared.contracts import topics
from shared.contracts.identity import ContactChanged, UserRegistered
from shared.contracts.order import OrderStatusChanged, OrderUrged
from shared.contracts.support import PARTNER_EVENT_TYPE
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("support")


@router.handles(UserRegistered, ContactChanged)
async def keep_contact(event: UserRegistered | ContactChanged, ctx: HandlerContext) -> None:
    """Where to email the buyer. Only fields the event carries are changed."""
    fields = {k: v for k, v in (("email", event.email), ("phone", event.phone)) if v is not None}
    if fields:
        await ctx.tx.db[CONTACTS].update_one(
            {"_id": event.user_id}, {"$set": fields}, upsert=True, session=ctx.tx.session
        )


@router.handles(OrderStatusChanged)
async def follow_order(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    tx = ctx.tx
    await _project_order(event, ctx)

    if event.status in domain.SETTLED_ORDER_STATUSES:
        await tx.db[URGES].update_one(
            {"_id": event.order_id, "open": True},
            {"$set": {"open": False, "closed_at": event.at, "closed_because": event.status}},
            session=tx.session,
        )

    notice = domain.order_notice(event)
    if notice is not None:
        await notify(
            tx,
            user_id=event.user_id,
            kind=f"order.{event.status}",
            subject=notice[0],
            body=notice[1],
            ref={"order_id": event.order_id},
        )

    # The partner feed: written to support's outbox in this same transaction, so each status
    # change is on the public topic once (the inbox stops a redelivered event here).
    public = domain.partner_event(event, event_id=ctx.envelope.event_id)
    if public is not None:
        value = domain.encode_public(public)
        tx.emit_public(
            topic=topics.PARTNER_ORDER_EVENTS,
            key=event.order_id,
            value=value,
            event_id=public.event_id,
            type_=PARTNER_EVENT_TYPE,
        )
        await _queue_webhook_deliveries(ctx, event, public.event_id, value)


async def _project_order(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    """Keep the newest change. One order's events arrive in order (one partition); the `at`
    check only keeps a replayed old event from winding the projection back."""
    tx = ctx.tx
    fields = {
        "user_id": event.user_id,
        "status": event.status,
        "sku_id": event.sku_id,
        "quantity": event.quantity,
        "total_cents": event.total_cents,
        "partner_key_id": event.partner_key_id,
        "at": event.at,
    }
    current = await tx.db[ORDERS].find_one({"_id": event.order_id}, {"at": 1}, session=tx.session)
    if current is None:
        await tx.db[ORDERS].insert_one({"_id": event.order_id, **fields}, session=tx.session)
    elif current["at"] <= event.at:
        await tx.db[ORDERS].update_one({"_id": event.order_id}, {"$set": fields}, session=tx.session)


async def _queue_webhook_deliveries(
    ctx: HandlerContext, event: OrderStatusChanged, event_id: str, value: bytes
) -> None:
    """One delivery record per subscribed webhook of the partner, keyed (webhook, event): the
    dispatcher (services/support/webhooks.py) sends it until the receiver says 2xx."""
    tx = ctx.tx
    hooks = await tx.db[WEBHOOKS].find({"partner_user_id": event.user_id}, session=tx.session).to_list(None)
    now = ctx.envelope.occurred_at
    records: list[dict[str, Any]] = [
        {
            "_id": f"{hook['_id']}:{event_id}",
            "webhook_id": hook["_id"],
            "partner_user_id": event.user_id,
            "event_id": event_id,
            "order_id": event.order_id,
            "status_of_order": event.status,
            "payload": Binary(value),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "log": [],
        }
        for hook in hooks
        if domain.webhook_wants(hook["events"], event.status)
    ]
    if records:
        await tx.db[DELIVERIES].insert_many(records, session=tx.session)


@router.handles(OrderUrged)
async def record_urge(event: OrderUrged, ctx: HandlerContext) -> None:
    """催单: one urge record per order, counted; staff see open urges first."""
    await ctx.tx.db[URGES].update_one(
        {"_id": event.order_id},
        {
            "$set": {
                "user_id": event.user_id,
                "order_status": event.status,
                "last_urged_at": event.urged_at,
                "open": True,
            },
            "$setOnInsert": {"first_urged_at": event.urged_at},
            "$inc": {"count": 1},
        },
        upsert=True,
        session=ctx.tx.session,
    )
