"""Orders paid through the payment provider (`order.payment-requested` with `method: provider`).

The wallet owns the provider adapter, so the order service asks for the payment through the
same event as a balance payment (Decision in docs/architecture.md). The wallet checks the coupon
hold and the account, registers the payment with the provider (trade number `order-<order id>`,
idempotent there) and answers `wallet.payment-pending` with the pay_url. When the provider's
signed notification comes, in ONE transaction: the payment moves pending -> succeeded (the
`domain.TOPUP` lifecycle, so duplicates change nothing), the money is credited to the buyer's
balance and the order's payment is debited from it (with the coupon consumed while it is still
held). So the provider's money is never lost: if the order has meanwhile expired, the order
service answers the capture with a refund, which lands on the balance.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import msgspec

from services.wallet.deps import WalletDeps, deps_of_runtime
from services.wallet.domain import (
    MISMATCH_DETAILS,
    MISMATCH_TITLES,
    PROVIDER_CHANNELS,
    TopupStatus,
    order_trade_no,
    provider_mismatch,
    provider_postings,
)
from services.wallet.provider import ProviderError
from services.wallet.usecases import payments
from shared.contracts.envelope import utcnow
from shared.contracts.order import PaymentRequested
from shared.contracts.wallet import PaymentPending
from shared.errors import Problem
from shared.messaging.consumer import RejectEvent
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

Doc = dict[str, Any]

PROVIDER_UNAVAILABLE = "provider-unavailable"


def mismatch_problem(slug: str) -> Problem:
    return Problem(422, slug, MISMATCH_TITLES[slug], MISMATCH_DETAILS[slug])


async def request_payment(tx: Tx, deps: WalletDeps, p: PaymentRequested) -> None:
    """`order.payment-requested`: from the balance, or through the provider. An order whose coupon
    covers everything has nothing to pay at the provider: it is captured at zero."""
    if p.method == "provider" and p.amount_cents > 0:
        await start_provider_payment(tx, deps, p)
    else:
        await payments.capture_payment(tx, p, deps.store)


async def start_provider_payment(tx: Tx, deps: WalletDeps, p: PaymentRequested) -> None:
    """Register the order's payment with the provider once and answer `wallet.payment-pending`
    (or declined: coupon no longer held, no account, provider unavailable)."""
    store = deps.store
    if (
        await store.order_payment(p.order_id, tx) is not None
        or await store.declined(tx, p.order_id)
        or await store.entry(tx, payments.payment_key(p.order_id)) is not None
    ):
        log.info("provider payment for order %s was already requested; nothing to do", p.order_id)
        return
    if p.channel not in PROVIDER_CHANNELS:
        raise RejectEvent(f"provider payment of order {p.order_id} on unknown channel {p.channel!r}")
    coupon_order = p.coupon_order_id or p.order_id
    held = p.coupon_code and await store.usable_hold(tx, order_id=coupon_order, user_id=p.user_id, code=p.coupon_code)
    if p.coupon_code and held is None:
        await payments.decline(store, tx, p, payments.COUPON_UNAVAILABLE)
        return
    if await store.account(p.user_id, tx) is None:
        await payments.decline(store, tx, p, payments.NO_ACCOUNT)
        return
    try:
        # Idempotent at the provider per trade number: a redelivered request gets the same pay_url.
        created = await deps.provider.create_order(
            trade_no=order_trade_no(p.order_id), amount_cents=p.amount_cents, channel=p.channel
        )
    except (ProviderError, Problem) as exc:
        log.warning("payment provider refused the payment of order %s: %s", p.order_id, exc)
        await payments.decline(store, tx, p, PROVIDER_UNAVAILABLE)
        return
    doc: Doc = {
        "_id": p.order_id,
        "user_id": p.user_id,
        "amount_cents": p.amount_cents,
        "channel": p.channel,
        "status": TopupStatus.PENDING.value,
        "provider_trade_no": created["provider_trade_no"],
        "pay_url": created["pay_url"],
        "request": msgspec.to_builtins(p),
        "created_at": utcnow(),
    }
    await store.add_order_payment(tx, doc)
    tx.emit(
        PaymentPending(
            order_id=p.order_id,
            user_id=p.user_id,
            amount_cents=p.amount_cents,
            channel=p.channel,
            pay_url=created["pay_url"],
            provider_trade_no=created["provider_trade_no"],
        )
    )


async def handle_notification(deps: WalletDeps, channel: str, order_id: str, fields: Doc) -> str:
    """A verified notification about an order's provider payment: 'paid', 'failed' or
    'unchanged' (404 unknown trade, 422 mismatch)."""
    payment = await deps.store.order_payment(order_id)
    if payment is None or payment["channel"] != channel:
        log.warning("payment notification for unknown order trade %s on channel %s rejected", order_id, channel)
        raise Problem(404, "unknown-trade", "Unknown trade", "no payment with this trade number on this channel")
    return await apply_result(deps, payment, fields, via="notify")


async def apply_result(deps: WalletDeps, payment: Doc, fields: Doc, *, via: str) -> str:
    slug = provider_mismatch(payment, fields)
    if slug is not None:
        log.warning("payment %s for order %s rejected: %s", via, payment["_id"], slug)
        raise mismatch_problem(slug)
    status = fields.get("status")
    if status == "success":

        async def settle(tx: Tx) -> bool:
            return await settle_paid(tx, deps, payment["_id"], via=via)

        return "paid" if await deps.uow.run(settle) else "unchanged"
    if status in ("fail", "closed"):

        async def fail(tx: Tx) -> bool:
            fields = {"failed_at": utcnow(), "failure_reason": f"{status} ({via})"}
            return await deps.store.move_order_payment(tx, payment["_id"], TopupStatus.FAILED, fields) is not None

        return "failed" if await deps.uow.run(fail) else "unchanged"
    return "pending"


async def settle_paid(tx: Tx, deps: WalletDeps, order_id: str, *, via: str) -> bool:
    """The provider took the money: pending -> succeeded once, credit it to the balance and pay
    the order from it in the same transaction. False when it was settled already."""
    store, now = deps.store, utcnow()
    paid = await store.move_order_payment(tx, order_id, TopupStatus.SUCCEEDED, {"succeeded_at": now, "via": via})
    if paid is None:
        return False
    p = msgspec.convert(paid["request"], PaymentRequested)
    account = await store.credit(tx, p.user_id, p.amount_cents)
    if account is None:
        raise RuntimeError(f"provider payment of order {order_id} for user {p.user_id} who has no account")
    await store.book(
        tx,
        provider_postings(
            order_id,
            p.user_id,
            paid["channel"],
            p.amount_cents,
            at=now,
            user_fields={
                "channel": paid["channel"],
                "description": f"{paid['channel']} payment for order {order_id}",
                "balance_after_cents": account["balance_cents"],
            },
        ),
    )
    # A coupon released meanwhile (the order expired or was cancelled) is not consumed: the
    # order service refunds a payment for a closed order to the balance anyway.
    coupon_order = p.coupon_order_id or p.order_id
    held = bool(p.coupon_code) and (
        await store.usable_hold(tx, order_id=coupon_order, user_id=p.user_id, code=p.coupon_code or "") is not None
    )
    await payments.debit(store, tx, p, with_coupon=held)
    return True


# -- lost notifications ----------------------------------------------------------------------------


async def poll_once(deps: WalletDeps) -> int:
    """Ask the provider about order payments still pending after `topup_poll_after_seconds` (the
    same clock as top-ups): a lost notification still pays the order. How many changed."""
    settings = deps.settings
    pending = await deps.store.unanswered_order_payments(
        utcnow() - timedelta(seconds=settings.topup_poll_after_seconds)
    )
    changed = 0
    for payment in pending:
        try:
            answer = await deps.provider.query(order_trade_no(payment["_id"]))
            outcome = await apply_result(deps, payment, answer, via="poll")
        except (ProviderError, Problem) as exc:
            log.warning("polling the payment of order %s: %s", payment["_id"], exc)
            continue
        changed += outcome in ("paid", "failed")
    return changed


async def poll_order_payments(rt: Runtime) -> None:
    """The wallet's supervised background loop for order payments (`ServiceSpec.background`);
    settling is exactly once, so every replica may run it."""
    deps = deps_of_runtime(rt)
    while True:
        await asyncio.sleep(deps.settings.topup_poll_interval_seconds)
        if changed := await poll_once(deps):
            log.info("order payment poll settled %d payment(s)", changed)
