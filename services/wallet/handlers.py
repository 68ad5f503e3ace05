"""The wallet service's Kafka event handlers (each runs in a transaction with the inbox).

order.placed -> hold its coupon; order.payment-requested -> debit once (+ consume the coupon);
order.refund-requested -> refund once; order.status-changed (cancelled | expired) -> release the
coupon; identity.user-registered -> open the account (+ signup coupons).
"""

from __future__ import annotations

from services.wallet import coupons, ledger
from shared.contracts.envelope import utcnow
from shared.contracts.identity import UserRegistered
from shared.contracts.order import OrderPlaced, OrderStatusChanged, PaymentRequested, RefundRequested
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("wallet")

RELEASING_STATUSES = frozenset({"cancelled", "expired"})


@router.handles(UserRegistered)
async def open_account(event: UserRegistered, ctx: HandlerContext) -> None:
    if await ledger.open_account(ctx.tx, event.user_id):
        await coupons.grant_on_signup(ctx.tx, event.user_id, utcnow())


@router.handles(OrderPlaced, when=lambda e: e.coupon_code is not None)
async def hold_coupon(event: OrderPlaced, ctx: HandlerContext) -> None:
    await coupons.hold(ctx.tx, event)


@router.handles(PaymentRequested)
async def take_payment(event: PaymentRequested, ctx: HandlerContext) -> None:
    await ledger.capture_payment(ctx.tx, event)


@router.handles(RefundRequested)
async def make_refund(event: RefundRequested, ctx: HandlerContext) -> None:
    await ledger.refund_payment(ctx.tx, event)


@router.handles(OrderStatusChanged, when=lambda e: e.status in RELEASING_STATUSES)
async def release_coupon(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await coupons.release(ctx.tx, event.order_id, event.status)
