"""Expected delivery time (预计到账时间): what a SKU's real deliveries show, and what an order
promises.

Each delivered order adds its paid → delivered time to its SKU's latest `ETA_SAMPLES`; their p90
is the SKU's observed ETA, announced (`order.delivery-time-observed`) when it changes, so the
catalog shows it on the product. An order is placed with its ETA: the observed p90 when there
are enough deliveries, else the staff's `eta_seconds`; its `eta_at` is that long after payment,
and 催单 opens once `eta_at` has passed.
"""

from __future__ import annotations

import time
from datetime import datetime

from services.order.deps import OrderDeps
from services.order.domain import p90, with_delivery_time
from shared.contracts.catalog import SkuChanged
from shared.contracts.order import DeliveryTimeObserved
from shared.messaging.outbox import Tx


async def observe_delivery(tx: Tx, deps: OrderDeps, order_id: str, delivered_at: datetime) -> None:
    order = await deps.store.order(order_id, history=False)
    if order is None or order.get("paid_at") is None:
        return
    seconds = max((delivered_at - order["paid_at"]).total_seconds(), 0.0)
    sku_id = order["sku_id"]
    times = await deps.store.delivery_times(tx, sku_id)
    kept = with_delivery_time(times["samples"], times["orders"], order_id, seconds)
    if kept is None:
        return  # this order's time is already among them
    samples, orders = kept
    observed = p90(samples)
    deps.store.keep_delivery_times(tx, sku_id, {"samples": samples, "orders": orders, "p90": observed})
    if observed != times["p90"]:
        tx.emit(DeliveryTimeObserved(sku_id=sku_id, p90_seconds=observed, samples=len(samples)))


async def observed(deps: OrderDeps, sku_id: str) -> int | None:
    """The SKU's observed p90, read at most once per `sku_cache_seconds` (the order path)."""
    now = time.monotonic()
    hit = deps.eta_cache.get(sku_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = await deps.store.observed_eta(sku_id)
    if len(deps.eta_cache) > 10_000:
        deps.eta_cache.clear()
    deps.eta_cache[sku_id] = (now + deps.settings.sku_cache_seconds, value)
    return value


async def eta_of(deps: OrderDeps, sku: SkuChanged) -> tuple[int | None, int | None]:
    """(the staff's ETA, the observed p90) of a SKU."""
    return sku.eta_seconds, await observed(deps, sku.sku_id)
