"""Fulfilment's reactions to orders: start exactly one delivery per paid order, and stop one the
buyer cancelled if nothing has gone out yet."""

from __future__ import annotations

from services.fulfilment.deliveries import DELIVERIES, MANUAL_TASKS, finish, open_delivery
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.manual import MANUAL_ESTIMATE_MINUTES, open_task
from shared.contracts.fulfilment import FulfilmentStarted
from shared.contracts.order import CancelRequested, OrderPaid
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("fulfilment")


@router.handles(OrderPaid)
async def start_delivery(event: OrderPaid, ctx: HandlerContext) -> None:
    assert ctx.runtime is not None
    deps = ctx.runtime.get(FulfilmentDeps)
    if await open_delivery(ctx.tx, event) is None:
        return  # this order already has its delivery
    if event.delivery_mode == "direct":
        ctx.tx.emit(
            FulfilmentStarted(
                order_id=event.order_id,
                user_id=event.user_id,
                mode="direct",
                estimated_minutes=deps.settings.direct_estimated_minutes,
            )
        )

        async def wake() -> None:
            deps.wake.set()

        ctx.tx.after_commit(wake)
    elif event.delivery_mode == "manual":
        await open_task(ctx.tx, event)
        ctx.tx.emit(
            FulfilmentStarted(
                order_id=event.order_id, user_id=event.user_id, mode="manual", estimated_minutes=MANUAL_ESTIMATE_MINUTES
            )
        )
    else:
        await deps.deliver_auto(ctx.tx, event)


@router.handles(CancelRequested)
async def stop_if_nothing_went_out(event: CancelRequested, ctx: HandlerContext) -> None:
    """Only a delivery nothing has been sent for can stop: a manual task still waiting, or a
    direct top-up not yet sent to the supplier. Otherwise the delivery goes on (and the order ends
    delivered, or refunded by its own failure)."""
    delivery = await ctx.tx.db[DELIVERIES].find_one({"_id": event.order_id}, session=ctx.tx.session)
    if delivery is None or delivery["status"] != "pending" or delivery.get("request_id"):
        return
    if delivery["mode"] == "manual":
        result = await ctx.tx.db[MANUAL_TASKS].update_one(
            {"_id": event.order_id, "status": "pending"}, {"$set": {"status": "cancelled"}}, session=ctx.tx.session
        )
        if not result.modified_count:
            return
    elif delivery["mode"] != "direct":
        return
    await finish(ctx.tx, event.order_id, succeeded=False, expect=("pending",), reason="cancelled by the buyer")
