"""The support service's Kafka event handlers: decode, then one use case in the consumer's
transaction (with the inbox, so a redelivered event changes nothing twice)."""

from __future__ import annotations

from services.support.deps import deps_of
from services.support.usecases import orders, reminders, subscriptions, urges
from shared.contracts.fulfilment import KeyExpiryReminder
from shared.contracts.identity import ApiKeyCreated, ContactChanged, UserRegistered
from shared.contracts.order import OrderStatusChanged, OrderUrged, SubscriptionRunFailed
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("support")


@router.handles(UserRegistered, ContactChanged)
async def keep_contact(event: UserRegistered | ContactChanged, ctx: HandlerContext) -> None:
    await orders.keep_contact(deps_of(ctx), ctx.tx, event)


@router.handles(OrderStatusChanged)
async def follow_order(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await orders.follow_order(
        deps_of(ctx), ctx.tx, event, event_id=ctx.envelope.event_id, occurred_at=ctx.envelope.occurred_at
    )


@router.handles(OrderUrged)
async def record_urge(event: OrderUrged, ctx: HandlerContext) -> None:
    """催单: one urge record per order, counted."""
    await urges.record_urge(deps_of(ctx), ctx.tx, event)


@router.handles(ApiKeyCreated)
async def open_partner_feed(event: ApiKeyCreated, ctx: HandlerContext) -> None:
    """The partner's first API key opens its feed topic."""
    await orders.open_partner_feed(deps_of(ctx), ctx.tx, event, at=ctx.envelope.occurred_at)


@router.handles(SubscriptionRunFailed)
async def tell_subscription_failed(event: SubscriptionRunFailed, ctx: HandlerContext) -> None:
    """自动充值: a failed run is told to its owner once."""
    await subscriptions.run_failed(deps_of(ctx), ctx.tx, event)


@router.handles(KeyExpiryReminder)
async def remind_key_expiry(event: KeyExpiryReminder, ctx: HandlerContext) -> None:
    """订单到期提醒: unrevealed keys expire soon."""
    await reminders.key_expiring(deps_of(ctx), ctx.tx, event)
