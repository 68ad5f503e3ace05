"""The order service's business signals (Prometheus), recorded by the saga's use cases once the
transaction that made the change has committed (`tx.after_commit`), so a retried or aborted
transaction never counts:

- `kameng_orders_total{stage, delivery_mode}`: orders placed, paid, delivered, refunded;
- `kameng_order_pay_to_delivered_seconds{delivery_mode}`: from payment to delivery (SLO: 99 % of
  automatic deliveries within 3 s, docs/slo.md).

Labels are the stage and the SKU's delivery mode only: never an order, user or SKU id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram

from services.order.domain import Status

ORDERS = Counter("kameng_orders_total", "Orders reaching a stage, by delivery mode", ["stage", "delivery_mode"])
# Fine around the 3 s objective (the SLO reads the 3.0 bucket), coarse for manual deliveries.
PAY_TO_DELIVERED = Histogram(
    "kameng_order_pay_to_delivered_seconds",
    "Time from an order's payment to its delivery",
    ["delivery_mode"],
    buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)

STAGES = {Status.PAID: "paid", Status.DELIVERED: "delivered", Status.REFUNDED: "refunded"}
MODES = ("auto", "direct", "manual")

# Every series exists from the start at 0, so the first order after a start is an increase.
for _mode in MODES:
    PAY_TO_DELIVERED.labels(_mode)
    for _stage in ("placed", *STAGES.values()):
        ORDERS.labels(_stage, _mode)


async def placed(order: dict[str, Any]) -> None:
    ORDERS.labels("placed", order["delivery_mode"]).inc()


async def moved(before: dict[str, Any], target: Status, fields: dict[str, Any] | None) -> None:
    """An order went from `before` (as it was) to `target`."""
    stage = STAGES.get(target)
    if stage is None:
        return
    mode = before.get("delivery_mode", "auto")
    ORDERS.labels(stage, mode).inc()
    paid_at = before.get("paid_at")
    delivered_at = (fields or {}).get("delivered_at")
    if target is Status.DELIVERED and isinstance(paid_at, datetime) and isinstance(delivered_at, datetime):
        PAY_TO_DELIVERED.labels(mode).observe(max(0.0, (delivered_at - paid_at).total_seconds()))
