"""Urges (催单): counted per order from `order.urged`, listed for staff, handled by staff."""

from __future__ import annotations

from typing import Any

from services.support.deps import SupportDeps
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderUrged
from shared.errors import not_found
from shared.messaging.outbox import Tx


async def record_urge(deps: SupportDeps, tx: Tx, event: OrderUrged) -> None:
    """One urge record per order, counted; staff see open urges first."""
    await deps.store.count_urge(
        event.order_id, user_id=event.user_id, order_status=event.status, at=event.urged_at, tx=tx
    )


async def open_urges(deps: SupportDeps) -> list[dict[str, Any]]:
    """Open urges, most urged first, then the longest waiting, with the order's status now and
    its ticket ids."""
    urges = await deps.store.open_urges()
    order_ids = [u["_id"] for u in urges]
    orders = await deps.store.orders_by_id(order_ids)
    tickets = await deps.store.ticket_ids_by_order(order_ids)
    return [
        {
            "order_id": u["_id"],
            "user_id": u["user_id"],
            "count": u["count"],
            "first_urged_at": u["first_urged_at"],
            "last_urged_at": u["last_urged_at"],
            "order_status": (orders.get(u["_id"]) or {}).get("status", u.get("order_status")),
            "ticket_ids": tickets.get(u["_id"], []),
        }
        for u in urges
    ]


async def handle_urge(deps: SupportDeps, order_id: str) -> None:
    if not await deps.store.handle_urge(order_id, at=utcnow()):
        raise not_found("urge")
