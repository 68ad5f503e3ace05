"""The payment provider's API as the wallet calls it: create a payment order, query one.

Every request and answer is signed (HMAC-SHA256 over the canonical fields, `domain.sign`), so a
query answer is trusted exactly as much as a notification is.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from services.wallet.domain import sign, signature_valid
from services.wallet.settings import WalletSettings
from shared.errors import Problem

log = logging.getLogger(__name__)


class ProviderError(Exception):
    pass


class PaymentProvider:
    def __init__(self, settings: WalletSettings) -> None:
        self.base = settings.payment_provider_url.rstrip("/")
        self.notify_base = settings.payment_notify_base_url.rstrip("/")
        self.secret = settings.payment_provider_secret.get_secret_value()
        self.client = httpx.AsyncClient(timeout=settings.payment_provider_timeout_seconds)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def create_order(self, *, trade_no: str, amount_cents: int, channel: str) -> dict[str, Any]:
        """Register the payment with the provider: {provider_trade_no, pay_url}. Idempotent per trade_no."""
        fields: dict[str, Any] = {
            "merchant_trade_no": trade_no,
            "amount_cents": amount_cents,
            "channel": channel,
            "notify_url": f"{self.notify_base}/api/v1/payments/notify/{channel}",
        }
        fields["sign"] = sign(fields, self.secret)
        try:
            r = await self.client.post(f"{self.base}/api/orders", json=fields)
        except httpx.HTTPError as exc:
            log.warning("payment provider unreachable: %r", exc)
            raise Problem(
                503,
                "payment-provider-unavailable",
                "Payment provider unavailable",
                "the payment provider does not answer; try again shortly",
            ) from exc
        return self._verified(r)

    async def query(self, trade_no: str) -> dict[str, Any]:
        """The provider's view of a payment: {status: pending|success|fail, amount_cents, ...}."""
        try:
            r = await self.client.get(f"{self.base}/api/orders/{trade_no}")
        except httpx.HTTPError as exc:
            raise ProviderError(f"provider unreachable: {exc!r}") from exc
        return self._verified(r)

    async def close(self, trade_no: str) -> dict[str, Any]:
        """Close an unpaid payment so it can no longer be paid; answers the state after closing."""
        fields: dict[str, Any] = {"merchant_trade_no": trade_no}
        fields["sign"] = sign(fields, self.secret)
        try:
            r = await self.client.post(f"{self.base}/api/orders/{trade_no}/close", json=fields)
        except httpx.HTTPError as exc:
            raise ProviderError(f"provider unreachable: {exc!r}") from exc
        return self._verified(r)

    def _verified(self, r: httpx.Response) -> dict[str, Any]:
        if r.status_code != 200:
            raise ProviderError(f"provider answered {r.status_code}: {r.text[:200]}")
        body = r.json()
        if not isinstance(body, dict) or not signature_valid(body, self.secret):
            raise ProviderError("provider answer has no valid signature")
        return body
