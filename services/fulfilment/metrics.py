"""The fulfilment service's business signals (Prometheus), sampled by `usecases.stock.sample_signals`:

- `kameng_card_key_stock_available{sku}`: card keys a buyer can still buy per SKU of the vault
  that is on sale with automatic delivery (supply minus holds, the Redis counters orders
  reserve from);
- `kameng_manual_queue_tasks`: manual deliveries waiting for staff.

`sku` is a catalog SKU id: as many values as staff create SKUs, never per order or buyer.
"""

from __future__ import annotations

from prometheus_client import Gauge

CARD_KEY_STOCK = Gauge(
    "kameng_card_key_stock_available", "Card keys that can still be sold, per SKU of the vault", ["sku"]
)
MANUAL_QUEUE = Gauge("kameng_manual_queue_tasks", "Manual deliveries waiting for staff")

SAMPLE_SECONDS = 15.0
