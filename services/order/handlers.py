"""The order service's Kafka event handlers: each decodes an event and calls one use case in the
handler's transaction (with the inbox). Events that do not fit an order's status change nothing."""

from __future__ import annotations

from services.order.deps import deps_of
from services.order.usecases import eta, projections, saga, sites
from shared.contracts.catalog import SiteChanged, SkuChanged
from shared.contracts.fulfilment import FulfilmentFailed, FulfilmentStarted, FulfilmentSucceeded, KeysRevealed
from shared.contracts.identity import UserVerified
from shared.contracts.support import RefundApproved
from shared.contracts.wallet import (
    CouponDefined,
    CouponGranted,
    PaymentCaptured,
    PaymentDeclined,
    PaymentPending,
    RefundCompleted,
)
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("order")


@router.handles(SkuChanged)
async def project_sku(event: SkuChanged, ctx: HandlerContext) -> None:
    await projections.project_sku(ctx.tx, deps_of(ctx), event)


@router.handles(SiteChanged)
async def project_site(event: SiteChanged, ctx: HandlerContext) -> None:
    await sites.project_site(ctx.tx, deps_of(ctx), event)


@router.handles(UserVerified)
async def project_verified_buyer(event: UserVerified, ctx: HandlerContext) -> None:
    await projections.buyer_verified(ctx.tx, deps_of(ctx), event.user_id, event.person)


@router.handles(CouponDefined)
async def project_coupon(event: CouponDefined, ctx: HandlerContext) -> None:
    await projections.coupon_defined(ctx.tx, deps_of(ctx), event)


@router.handles(CouponGranted)
async def project_coupon_grant(event: CouponGranted, ctx: HandlerContext) -> None:
    await projections.coupon_granted(ctx.tx, deps_of(ctx), event)


@router.handles(PaymentPending)
async def on_payment_pending(event: PaymentPending, ctx: HandlerContext) -> None:
    await saga.payment_pending(ctx.tx, deps_of(ctx), event.order_id, event.pay_url)


@router.handles(PaymentCaptured)
async def on_payment_captured(event: PaymentCaptured, ctx: HandlerContext) -> None:
    await saga.payment_captured(ctx.tx, deps_of(ctx), event.order_id)


@router.handles(PaymentDeclined)
async def on_payment_declined(event: PaymentDeclined, ctx: HandlerContext) -> None:
    await saga.payment_declined(ctx.tx, deps_of(ctx), event.order_id, event.reason)


@router.handles(FulfilmentStarted)
async def on_fulfilment_started(event: FulfilmentStarted, ctx: HandlerContext) -> None:
    await saga.delivery_started(ctx.tx, deps_of(ctx), event.order_id, event.estimated_minutes)


@router.handles(FulfilmentSucceeded)
async def on_fulfilment_succeeded(event: FulfilmentSucceeded, ctx: HandlerContext) -> None:
    await saga.delivered(ctx.tx, deps_of(ctx), event.order_id, event.delivered_at, event.delivery_id)


@router.handles(FulfilmentFailed)
async def on_fulfilment_failed(event: FulfilmentFailed, ctx: HandlerContext) -> None:
    await saga.delivery_failed(ctx.tx, deps_of(ctx), event.order_id, event.reason)


@router.handles(RefundCompleted)
async def on_refund_completed(event: RefundCompleted, ctx: HandlerContext) -> None:
    await saga.refund_completed(ctx.tx, deps_of(ctx), event.order_id)


@router.handles(RefundApproved)
async def on_after_sales_refund(event: RefundApproved, ctx: HandlerContext) -> None:
    await saga.after_sales_refund(ctx.tx, deps_of(ctx), event.order_id, event.ticket_id)


@router.handles(KeysRevealed)
async def keys_revealed(event: KeysRevealed, ctx: HandlerContext) -> None:
    """待使用 ends when the owner first sees the keys."""
    await projections.keys_revealed(ctx.tx, deps_of(ctx), event.order_id, event.revealed_at)


@router.handles(FulfilmentSucceeded)
async def observe_delivery_time(event: FulfilmentSucceeded, ctx: HandlerContext) -> None:
    """预计到账时间: each delivery's paid -> delivered time joins its SKU's recent ones."""
    await eta.observe_delivery(ctx.tx, deps_of(ctx), event.order_id, event.delivered_at)
