"""Settings of the fulfilment service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from shared.config import ServiceSettings

DEV_SUPPLIER_SECRET = "dev-only-supplier-secret"  # noqa: S105 - the simulator's default (deploy/suppliersim.py)
# The same value deploy/services.py gives `make dev`; refused when KAMENG_ENV=prod.
DEV_VAULT_KEYS = "dev1:ZGV2LW9ubHktdmF1bHQta2V5LTMyLWJ5dGVzLW9rISE="


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
    vault_keys: SecretStr = Field(
        default=SecretStr(DEV_VAULT_KEYS),
        alias="KAMENG_VAULT_KEYS",
        description="keyid:base64(32 bytes)[,keyid:...]; the first encrypts, all decrypt",
    )
    vault_fingerprint_key: SecretStr | None = Field(
        default=None,
        alias="KAMENG_VAULT_FINGERPRINT_KEY",
        description="HMAC key of the duplicate-detection fingerprints; unset = derived from the oldest vault key",
    )
    vault_max_key_length: int = 256
    vault_max_lines: int = 100_000
    vault_job_threshold_bytes: int = 256 * 1024
    """An upload larger than this is imported as a background job (202), smaller ones at once (200)."""
    import_chunk_keys: int = 5000
    """Keys written per transaction by an import job (the unit a restart resumes from)."""
    import_lease_seconds: float = 15.0
    """A running job whose worker has not renewed its lease for this long is taken over."""
    import_poll_seconds: float = 0.5
    stock_rebuild_interval_seconds: float = 3600.0
    epoch_check_seconds: float = 1.0
    """How often the service looks whether Redis lost its supply counters (`shared/inventory.py`)."""
    sku_wait_seconds: float = 5.0
    """Importing keys into a SKU the vault has not heard of waits this long for its projection: the
    catalog has acknowledged it and `catalog.sku-changed` is on the way (as order does). Longer
    than order's 2.5 s: staff import right after creating a SKU, often while a sale keeps the
    relays and consumers busy, and a made-up id costs one wait only (then 30 s of instant 404s)."""
    key_reminder_days: float = 3.0
    """订单到期提醒: an order's keys never revealed are reminded this many days before they expire."""
    key_reminder_sweep_seconds: float = 300.0
    """How often the reminder sweep looks for keys entering that window."""

    @model_validator(mode="after")
    def _no_dev_vault_key_in_prod(self) -> FulfilmentSettings:
        if self.environment == "prod" and "ZGV2LW9ubHktdmF1bHQta2V5" in self.vault_keys.get_secret_value():
            raise ValueError("KAMENG_VAULT_KEYS must not use the development key in prod")
        return self
