"""Settings of the order service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order"

    payment_timeout_minutes: float = 15.0
    """An order not paid by then expires and gives its stock back."""
    place_wait_seconds: float = 5.0
    """How long POST /orders waits for the wallet's answer before returning pending_payment."""
    cancel_window_minutes: float = 30.0
    urge_wait_minutes: float = 15.0
    expiry_sweep_seconds: float = 5.0
    low_stock_threshold: int = 10
    sku_cache_seconds: float = 2.0
    """Placing an order reads the SKU projection from memory for this long (the flash-sale path)."""
    sku_wait_seconds: float = 2.5
    """A SKU the projection has not heard of yet is polled for this long before "no such product":
    the catalog may already show it while its `catalog.sku-changed` event is still on the way."""
    max_quantity_per_order: int = 1000
    epoch_check_seconds: float = 1.0
    """How often the service looks whether Redis lost its held counters (`shared/inventory.py`)."""
    hold_rebuild_grace_seconds: float = 2.0
    """After Redis lost its counters, how long to wait before counting the open orders: an order
    whose hold went to the lost Redis may still be on its way into the database."""
    subscription_tick_seconds: float = 30.0
    """How often the scheduler of scheduled orders (自动充值) looks for due runs."""
    subscription_period_seconds: float = 0.0
    """When > 0, every subscription runs this many seconds apart instead of on its calendar
    (tests and demos watch a "month" in seconds); 0 in production."""
