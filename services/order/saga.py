"""The order saga's steps: each moves an order through the transitions table inside a unit of
work, emits what the other services act on, and, after the commit, gives stock back and wakes
waiting requests. Event handlers, the HTTP API and the expiry sweep all go through here, so each
rule about what follows a status change lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.order.domain import HOLDING_STOCK, Status
from services.order.settings import OrderSettings
from services.order.store import ORDERS, transition
from services.order.watch import StatusWatch
from shared.contracts.envelope import utcnow
from shared.contracts.order import CancelRequested, OrderPaid, OrderStatusChanged, RefundRequested
from shared.inventory import Inventory
from shared.messaging.outbox import Tx
from shared.runtime import Runtime


def no_coupons(caller: Any, sku: Any, body: Any) -> tuple[int, str | None]:
    """Coupon pricing until the wallet's coupon projection is wired: any code is unknown."""
    return 0, ("no such coupon" if getattr(body, "coupon_code", None) else None)


@dataclass
class OrderDeps:
    """The order service's own long-lived objects (registered on its Runtime)."""

    settings: OrderSettings
    inventory: Inventory
    watch: StatusWatch
    skus: Any  # placing.SkuCache (kept untyped here to avoid an import cycle)
    coupons: Callable[[Any, Any, Any], tuple[int, str | None]] = no_coupons

    @classmethod
    def of(cls, runtime: Runtime | None) -> OrderDeps:
        assert runtime is not None, "order handlers run inside the order service"
        return runtime.get(OrderDeps)


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
    before = await transition(tx, order_id, target, reason=reason, fields=fields)
    if before is None:
        return None
    tx.emit(status_changed(before, target, before["status"], reason))
    if Status(before["status"]) in HOLDING_STOCK and target not in HOLDING_STOCK and before.get("held"):
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


async def payment_captured(tx: Tx, deps: OrderDeps, order_id: str) -> str:
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


async def cancel(tx: Tx, deps: OrderDeps, order: dict[str, Any]) -> str:
    """A buyer's cancellation: unpaid orders close at once; paid ones ask fulfilment to stop."""
    if order["status"] == Status.PENDING_PAYMENT.value:
        if await move(tx, deps, order["_id"], Status.CANCELLED, reason="cancelled by the buyer"):
            return Status.CANCELLED.value
        return "unchanged"
    tx.emit(CancelRequested(order_id=order["_id"], user_id=order["user_id"]))
    await tx.db[ORDERS].update_one(
        {"_id": order["_id"]}, {"$set": {"cancel_requested_at": utcnow()}}, session=tx.session
    )
    return "cancel_requested"
