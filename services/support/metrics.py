"""Support's business signal (Prometheus), recorded by the webhook dispatcher once the outcomes
of a batch are saved:

- `kameng_webhook_deliveries_total{outcome}`: POSTs to partners that were `delivered` (2xx),
  `failed` (to be retried), the failure that made a delivery `dead` (dead-letter list), and
  deliveries `cancelled` because their webhook was removed.

No partner, webhook or delivery id is ever a label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from services.support.domain import DeliveryStatus

WEBHOOK_DELIVERIES = Counter(
    "kameng_webhook_deliveries_total", "Partner webhook delivery attempts by outcome", ["outcome"]
)
OUTCOME_OF = {
    DeliveryStatus.DELIVERED.value: "delivered",
    DeliveryStatus.PENDING.value: "failed",
    DeliveryStatus.DEAD.value: "dead",
    DeliveryStatus.CANCELLED.value: "cancelled",
}

for _outcome in OUTCOME_OF.values():
    WEBHOOK_DELIVERIES.labels(_outcome)


def deliveries(outcomes: Iterable[tuple[str, dict[str, Any], Any]]) -> None:
    """Count a dispatched batch: (delivery id, fields written, attempt) per delivery."""
    for _id, fields, _attempt in outcomes:
        WEBHOOK_DELIVERIES.labels(OUTCOME_OF.get(str(fields.get("status")), "failed")).inc()
