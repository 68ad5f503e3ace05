"""The wallet service's Kafka event handlers (each runs in a transaction with the inbox): decode,
call one use case with `ctx.tx` and the wallet's store.

order.placed -> hold its coupon; order.payment-requested -> debit once (+ consume the coupon), or
register it with the payment provider (`method: provider`, answered with its pay_url);
order.refund-requested -> refund once (+ give the coupon back); order.status-changed (cancelled |
expired) -> release the coupon; identity.user-registered -> open the account (+ signup coupons).
"""

from __future__ import annotations

from services.wallet.deps import deps_of
from services.wallet.usecases import accounts, agents, coupons, order_payments, payments
from shared.contracts.identity import UserRegistered
from shared.contracts.order import OrderPlaced, OrderStatusChanged, PaymentRequested, RefundRequested
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("wallet")

RELEASING_STATUSES = frozenset({"cancelled", "expired"})


@router.handles(UserRegistered)
async def open_account(event: UserRegistered, ctx: HandlerContext) -> None:
    await accounts.open_account(ctx.tx, event.user_id, deps_of(ctx).store)


@router.handles(OrderPlaced, when=lambda e: e.coupon_code is not None)
async def hold_coupon(event: OrderPlaced, ctx: HandlerContext) -> None:
    await coupons.hold_coupon(ctx.tx, event, deps_of(ctx).store)


@router.handles(PaymentRequested)
async def take_payment(event: PaymentRequested, ctx: HandlerContext) -> None:
    await order_payments.request_payment(ctx.tx, deps_of(ctx), event)


@router.handles(RefundRequested)
async def make_refund(event: RefundRequested, ctx: HandlerContext) -> None:
    await payments.refund_payment(ctx.tx, event, deps_of(ctx).store)


@router.handles(OrderStatusChanged, when=lambda e: e.agent_id is not None and e.status == "delivered")
async def credit_commission(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await agents.credit_commission(ctx.tx, deps_of(ctx), event)


@router.handles(OrderStatusChanged, when=lambda e: e.agent_id is not None and e.status == "refunded")
async def reverse_commission(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await agents.reverse_commission(ctx.tx, deps_of(ctx), event.order_id)


@router.handles(OrderStatusChanged, when=lambda e: e.status in RELEASING_STATUSES)
async def release_coupon(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await coupons.release_coupon(ctx.tx, event.order_id, event.status, deps_of(ctx).store)
