"""The buyer's order center (订单中心): list and show their orders, cancel within the window,
urge (催单) a late one. Someone else's order is indistinguishable from a missing one (404)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.order.deps import OrderDeps
from services.order.domain import (
    UNREVEALED_GROUP,
    Status,
    eta_at,
    may_cancel,
    may_urge,
    may_urge_after_eta,
    status_filter,
)
from services.order.usecases.outage import redis_answers_503
from services.order.usecases.saga import move
from shared.contracts.envelope import utcnow
from shared.contracts.order import CancelRequested, OrderUrged
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.paging import Paging


async def list_orders(
    deps: OrderDeps, user_id: str, status: str | None, group: str | None, paging: Paging
) -> tuple[list[dict[str, Any]], int]:
    """A page of the buyer's orders (newest first, without history) and how many match in all."""
    statuses, errors = status_filter(status, group)
    if errors:
        raise validation_problem([e.as_dict() for e in errors])
    unrevealed = group == UNREVEALED_GROUP and status is None
    return await deps.store.list_orders(user_id, statuses, skip=paging.skip, limit=paging.limit, unrevealed=unrevealed)


async def staff_list_orders(
    deps: OrderDeps,
    paging: Paging,
    *,
    status: str | None = None,
    group: str | None = None,
    user_id: str | None = None,
    sku_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The console's order search: every buyer's orders, filtered like the order center plus by
    buyer and SKU (an order id goes straight to `staff_get_order`)."""
    statuses, errors = status_filter(status, group)
    if errors:
        raise validation_problem([e.as_dict() for e in errors])
    query: dict[str, Any] = {}
    if statuses is not None:
        query["status"] = {"$in": statuses}
    if user_id:
        query["user_id"] = user_id
    if sku_id:
        query["sku_id"] = sku_id
    return await deps.store.staff_orders(query, skip=paging.skip, limit=paging.limit)


async def staff_get_order(deps: OrderDeps, order_id: str) -> dict[str, Any]:
    order = await deps.store.order(order_id)
    if order is None:
        raise not_found("order")
    return order


async def get_order(deps: OrderDeps, user_id: str, order_id: str) -> dict[str, Any]:
    order = await deps.store.own_order(user_id, order_id)
    if order is None:
        raise not_found("order")
    return order


@redis_answers_503
async def cancel_order(deps: OrderDeps, user_id: str, order_id: str) -> str:
    """Unpaid orders close at once; paid ones ask fulfilment to stop (409 outside the window or
    once delivered)."""
    order = await get_order(deps, user_id, order_id)
    why_not = may_cancel(Status(order["status"]), order["created_at"], utcnow(), deps.settings.cancel_window_minutes)
    if why_not is not None:
        raise Problem(409, "cannot-cancel", "Cannot cancel", why_not, order_status=order["status"])

    async def run(tx: Tx) -> str:
        if order["status"] == Status.PENDING_PAYMENT.value:
            if await move(tx, deps, order_id, Status.CANCELLED, reason="cancelled by the buyer"):
                return Status.CANCELLED.value
            return "unchanged"
        tx.emit(CancelRequested(order_id=order_id, user_id=order["user_id"]))
        await deps.store.mark_cancel_requested(tx, order_id, utcnow())
        return "cancel_requested"

    return await deps.uow.run(run)


async def urge_order(deps: OrderDeps, user_id: str, order_id: str) -> tuple[bool, datetime]:
    """Record an urge once per wait period and tell support (`order.urged`); whether this request
    was the one that urged, and when."""
    order = await get_order(deps, user_id, order_id)
    now = utcnow()
    if order.get("eta_seconds") is not None:
        # With an expected delivery time, 催单 opens when it has passed (预计到账时间).
        why_not = may_urge_after_eta(
            Status(order["status"]), eta_at(order), order.get("urged_at"), now, deps.settings.urge_wait_minutes
        )
    else:
        why_not = may_urge(
            Status(order["status"]), order.get("paid_at"), order.get("urged_at"), now, deps.settings.urge_wait_minutes
        )
    if why_not is not None:
        raise Problem(409, "cannot-urge", "Cannot urge yet", why_not, order_status=order["status"])

    async def run(tx: Tx) -> bool:
        urged = await deps.store.mark_urged(tx, order_id, order.get("urged_at"), now)
        if urged:
            tx.emit(OrderUrged(order_id=order_id, user_id=user_id, status=order["status"], urged_at=now))
        return urged

    return await deps.uow.run(run), now
