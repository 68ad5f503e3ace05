"""The order saga's steps: each moves an order through the transitions table inside the caller's
unit of work, emits what the other services act on, and, after the commit, gives stock back and
wakes waiting requests. Event handlers, the order center and the expiry sweep all go through
`move`, so each rule about what follows a status change lives in one place.

An event that does not fit the order's current status changes nothing (the guarded transition
refuses it): redeliveries, duplicates and late arrivals are normal.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.order import metrics
from services.order.deps import OrderDeps
from services.order.domain import BatchStatus, Status, gives_trial_back, is_batch, releases_hold
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderPaid, OrderStatusChanged, RefundRequested
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)


def status_changed(
    order: dict[str, Any], status: Status, previous: str | None, reason: str | None
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order["_id"],
        user_id=order["user_id"],
        status=status.value,
        previous_status=previous,
        sku_id=order["sku_id"],
        quantity=order["quantity"],
        total_cents=order["total_cents"],
        at=utcnow(),
        reason=reason,
        partner_key_id=order.get("partner_key_id"),
        site=order.get("site"),
        agent_id=order.get("agent_id"),
        commission_cents=int(order.get("commission_cents", 0)),
    )


async def move(
    tx: Tx,
    deps: OrderDeps,
    order_id: str,
    target: Status,
    *,
    reason: str | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """One status change with everything that always goes with it. Returns the order as it was
    before, or None when the order cannot move to `target` (then nothing happened)."""
    before = await deps.store.transition(tx, order_id, target, reason=reason, fields=fields)
    if before is None:
        return None
    tx.emit(status_changed(before, target, before["status"], reason))
    # A trial the buyer never received is given back in this same transaction (the rule and why
    # a delivered one is not: `domain.gives_trial_back`). Orders placed before `trial` was
    # stamped on them are looked up by order id (an indexed delete that finds nothing for most).
    released = before.get("trial", True) and gives_trial_back(target, before)
    if released and await deps.store.release_trial(tx, order_id):
        log.info("order %s ended %s undelivered: its free trial is given back", order_id, target.value)
    tx.after_commit(lambda: metrics.moved(before, target, fields))
    if releases_hold(Status(before["status"]), target, bool(before.get("held"))):
        sku_id = before["sku_id"]
        tx.after_commit(lambda: deps.inventory.release(sku_id, order_id))
    tx.after_commit(lambda: deps.watch.publish(order_id, target.value))
    return before


async def request_refund(tx: Tx, deps: OrderDeps, order_id: str, reason: str) -> bool:
    before = await move(tx, deps, order_id, Status.REFUNDING, reason=reason)
    if before is None:
        return False
    tx.emit(
        RefundRequested(order_id=order_id, user_id=before["user_id"], amount_cents=before["total_cents"], reason=reason)
    )
    return True


# -- payments (wallet) -------------------------------------------------------------------------


async def payment_captured(tx: Tx, deps: OrderDeps, payment_id: str) -> str:
    """The wallet captured a payment: of one order, or of a whole batch (`B…`)."""
    if is_batch(payment_id):
        await batch_paid(tx, deps, payment_id)
        return "batch"
    outcome = await order_paid(tx, deps, payment_id)
    if outcome != "paid":
        log.warning("payment for order %s captured while it could not be paid: %s", payment_id, outcome)
    return outcome


async def order_paid(tx: Tx, deps: OrderDeps, order_id: str) -> str:
    """PAID and ask for delivery; money that arrives for an order already closed goes back."""
    before = await move(tx, deps, order_id, Status.PAID, fields={"paid_at": utcnow()})
    if before is not None:
        tx.emit(
            OrderPaid(
                order_id=order_id,
                user_id=before["user_id"],
                sku_id=before["sku_id"],
                quantity=before["quantity"],
                delivery_mode=before["delivery_mode"],
                recipient=before["recipient"],
                validity_days=before.get("validity_days"),
                partner_key_id=before.get("partner_key_id"),
                face_value_cents=before.get("face_value_cents"),
            )
        )
        return "paid"
    if await request_refund(tx, deps, order_id, "payment arrived after the order was closed"):
        return "refunding"
    return "ignored"


async def payment_pending(tx: Tx, deps: OrderDeps, order_id: str, pay_url: str) -> bool:
    """The wallet registered a provider payment: keep its pay_url on the unpaid order and wake
    the POST /orders waiting to answer with it."""
    if not await deps.store.set_pay_url(tx, order_id, pay_url):
        return False
    tx.after_commit(lambda: deps.watch.publish(order_id, Status.PENDING_PAYMENT.value))
    return True


async def payment_declined(tx: Tx, deps: OrderDeps, payment_id: str, reason: str) -> None:
    """The wallet refused a payment: the order (or every order of the batch) is cancelled."""
    if is_batch(payment_id):
        await batch_declined(tx, deps, payment_id, reason)
        return
    await _decline(tx, deps, payment_id, reason)


async def _decline(tx: Tx, deps: OrderDeps, order_id: str, reason: str) -> None:
    await move(
        tx,
        deps,
        order_id,
        Status.CANCELLED,
        reason=f"payment declined: {reason}",
        fields={"decline_reason": reason},
    )


async def batch_paid(tx: Tx, deps: OrderDeps, batch_id: str) -> None:
    """The batch's one payment was captured: every order of it is paid (and delivered next)."""
    batch = await deps.store.settle_batch(tx, batch_id, BatchStatus.PAID)
    if batch is None:
        return
    for order_id in batch["order_ids"]:
        await order_paid(tx, deps, order_id)
    tx.after_commit(lambda: deps.watch.publish(batch_id, BatchStatus.PAID.value))


async def batch_declined(tx: Tx, deps: OrderDeps, batch_id: str, reason: str) -> None:
    batch = await deps.store.settle_batch(tx, batch_id, BatchStatus.CANCELLED, {"decline_reason": reason})
    if batch is None:
        return
    for order_id in batch["order_ids"]:
        await _decline(tx, deps, order_id, reason)
    tx.after_commit(lambda: deps.watch.publish(batch_id, BatchStatus.CANCELLED.value))


# -- delivery (fulfilment) and refunds ---------------------------------------------------------


async def delivery_started(tx: Tx, deps: OrderDeps, order_id: str, estimated_minutes: int | None) -> None:
    fields = {"estimated_minutes": estimated_minutes} if estimated_minutes else None
    await move(tx, deps, order_id, Status.DELIVERING, fields=fields)


async def delivered(tx: Tx, deps: OrderDeps, order_id: str, delivered_at: datetime, delivery_id: str) -> None:
    await move(tx, deps, order_id, Status.DELIVERED, fields={"delivered_at": delivered_at, "delivery_id": delivery_id})


async def delivery_failed(tx: Tx, deps: OrderDeps, order_id: str, reason: str) -> None:
    await request_refund(tx, deps, order_id, f"not delivered: {reason}")


async def refund_completed(tx: Tx, deps: OrderDeps, order_id: str) -> None:
    await move(tx, deps, order_id, Status.REFUNDED, fields={"refunded_at": utcnow()})


async def after_sales_refund(tx: Tx, deps: OrderDeps, order_id: str, ticket_id: str) -> bool:
    """Staff approved a refund on a ticket (售后): the order goes to refunding once, and the
    wallet gives back what was paid (the order's total, whatever the ticket says)."""
    refunded = await request_refund(tx, deps, order_id, f"after-sales refund (ticket {ticket_id})")
    if not refunded:
        log.warning("refund approved on ticket %s but order %s cannot be refunded now", ticket_id, order_id)
    return refunded
