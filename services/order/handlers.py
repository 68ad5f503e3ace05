"""The order service's Kafka event handlers (each runs in a transaction with the inbox).

An event that does not fit the order's current status changes nothing (the guarded transition
refuses it) and is acknowledged: redeliveries, duplicates and late arrivals are normal.
"""

from __future__ import annotations

import logging

from services.order.batches import batch_declined, batch_paid, is_batch
from services.order.domain import Status
from services.order.saga import OrderDeps, move, payment_captured, request_refund
from services.order.store import BUYERS, upsert_sku
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import FulfilmentFailed, FulfilmentStarted, FulfilmentSucceeded
from shared.contracts.identity import UserVerified
from shared.contracts.support import RefundApproved
from shared.contracts.wallet import PaymentCaptured, PaymentDeclined, RefundCompleted
from shared.messaging.consumer import EventRouter, HandlerContext

log = logging.getLogger(__name__)
router = EventRouter("order")


@router.handles(SkuChanged)
async def project_sku(event: SkuChanged, ctx: HandlerContext) -> None:
    await upsert_sku(ctx.tx, event)


@router.handles(UserVerified)
async def project_verified_buyer(event: UserVerified, ctx: HandlerContext) -> None:
    await ctx.tx.db[BUYERS].update_one(
        {"_id": event.user_id}, {"$set": {"real_name_verified": True}}, upsert=True, session=ctx.tx.session
    )


@router.handles(PaymentCaptured)
async def on_payment_captured(event: PaymentCaptured, ctx: HandlerContext) -> None:
    if is_batch(event.order_id):
        await batch_paid(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id)
        return
    outcome = await payment_captured(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id)
    if outcome != "paid":
        log.warning("payment for order %s captured while it could not be paid: %s", event.order_id, outcome)


@router.handles(PaymentDeclined)
async def on_payment_declined(event: PaymentDeclined, ctx: HandlerContext) -> None:
    if is_batch(event.order_id):
        await batch_declined(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id, event.reason)
        return
    await move(
        ctx.tx,
        OrderDeps.of(ctx.runtime),
        event.order_id,
        Status.CANCELLED,
        reason=f"payment declined: {event.reason}",
        fields={"decline_reason": event.reason},
    )


@router.handles(FulfilmentStarted)
async def on_fulfilment_started(event: FulfilmentStarted, ctx: HandlerContext) -> None:
    fields = {"estimated_minutes": event.estimated_minutes} if event.estimated_minutes else None
    await move(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id, Status.DELIVERING, fields=fields)


@router.handles(FulfilmentSucceeded)
async def on_fulfilment_succeeded(event: FulfilmentSucceeded, ctx: HandlerContext) -> None:
    await move(
        ctx.tx,
        OrderDeps.of(ctx.runtime),
        event.order_id,
        Status.DELIVERED,
        fields={"delivered_at": event.delivered_at, "delivery_id": event.delivery_id},
    )


@router.handles(FulfilmentFailed)
async def on_fulfilment_failed(event: FulfilmentFailed, ctx: HandlerContext) -> None:
    await request_refund(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id, f"not delivered: {event.reason}")


@router.handles(RefundCompleted)
async def on_refund_completed(event: RefundCompleted, ctx: HandlerContext) -> None:
    await move(ctx.tx, OrderDeps.of(ctx.runtime), event.order_id, Status.REFUNDED, fields={"refunded_at": utcnow()})


@router.handles(RefundApproved)
async def on_after_sales_refund(event: RefundApproved, ctx: HandlerContext) -> None:
    """Staff approved a refund on a ticket (售后): the order goes to refunding once, and the
    wallet gives back what was paid (the order's total, whatever the ticket says)."""
    refunded = await request_refund(
        ctx.tx, OrderDeps.of(ctx.runtime), event.order_id, f"after-sales refund (ticket {event.ticket_id})"
    )
    if not refunded:
        log.warning("refund approved on ticket %s but order %s cannot be refunded now", event.ticket_id, event.order_id)
