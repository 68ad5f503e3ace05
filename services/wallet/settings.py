"""Settings of the wallet service (environment variables; see docs/operations.md and docs/wallet.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr, model_validator

from shared.config import ServiceSettings

DEV_PAYMENT_PROVIDER_SECRET = "dev-only-payment-provider-secret-0123456789"  # noqa: S105 - refused in prod


class WalletSettings(ServiceSettings):
    service_name: ClassVar[str] = "wallet"

    # The payment provider (the simulator in dev and tests): where to create payment orders and
    # query them, the secret both sides sign with, and the public base URL its notifications go to
    # (the gateway's), e.g. http://gateway/api/v1/payments/notify/<channel>.
    payment_provider_url: str = "http://127.0.0.1:8090"
    payment_provider_secret: SecretStr = SecretStr(DEV_PAYMENT_PROVIDER_SECRET)
    payment_notify_base_url: str = "http://127.0.0.1:8000"
    payment_provider_timeout_seconds: float = 5.0

    # Polling the provider for top-ups whose notification has not come (lost callbacks).
    topup_poll_after_seconds: float = 60.0
    topup_poll_interval_seconds: float = 10.0
    # Unpaid this long: the payment is closed at the provider and the top-up fails (expired).
    topup_expire_after_seconds: float = 1800.0

    # Agents' commissions stay pending for the after-sales window after delivery, then become
    # available (the sweep checks this often).
    agent_commission_hold_seconds: float = 7 * 24 * 3600.0
    agent_commission_sweep_seconds: float = 30.0

    topup_min_cents: int = 100
    topup_max_cents: int = 5_000_000
    topup_points_per_yuan: int = 1

    @model_validator(mode="after")
    def _no_dev_provider_secret_in_prod(self) -> WalletSettings:
        secret = self.payment_provider_secret.get_secret_value()
        if self.environment == "prod" and (secret == DEV_PAYMENT_PROVIDER_SECRET or len(secret) < 32):
            raise ValueError("PAYMENT_PROVIDER_SECRET must be set to a random value of at least 32 characters in prod")
        return self
