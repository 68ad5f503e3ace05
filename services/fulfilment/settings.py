"""Settings of the fulfilment service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from shared.config import ServiceSettings

DEV_SUPPLIER_SECRET = "dev-only-supplier-secret"  # noqa: S105 - the simulator's default (deploy/suppliersim.py)


class FulfilmentSettings(ServiceSettings):
    service_name: ClassVar[str] = "fulfilment"

    # Direct top-up (直充) through a supplier
    supplier_url: str = "http://127.0.0.1:8010"
    supplier_secret: SecretStr = SecretStr(DEV_SUPPLIER_SECRET)
    public_base_url: str = "http://127.0.0.1:8000"
    """Where suppliers send their callbacks (the gateway)."""
    direct_max_attempts: int = 3
    direct_retry_backoff_seconds: float = 2.0
    direct_poll_after_seconds: float = 30.0
    """A submitted top-up with no callback by then is asked for at the supplier (lost callbacks)."""
    direct_dispatch_interval_seconds: float = 0.5
    direct_estimated_minutes: int = 10
