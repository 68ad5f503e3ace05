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
    max_quantity_per_order: int = 1000
