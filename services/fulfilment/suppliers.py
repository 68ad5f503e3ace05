"""Direct top-up suppliers behind one small interface, so another supplier is one more adapter.

The adapter speaks the supplier's protocol; the rules (one delivery per order, retries, refunds
on final failure) live in services/fulfilment/usecases/direct.py and do not change per supplier.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
import msgspec

SupplierStatus = Literal["processing", "succeeded", "failed"]


class SupplierUnavailable(Exception):
    """No answer (network, 5xx): the same request id may be sent again safely."""


@dataclass(frozen=True)
class SupplierResult:
    request_id: str
    supplier_ref: str
    status: SupplierStatus
    reason: str | None = None


class Supplier(Protocol):
    name: str

    async def submit(self, request_id: str, account: str, amount_cents: int, callback_url: str) -> SupplierResult: ...

    async def query(self, request_id: str) -> SupplierResult: ...

    def verify_callback(self, body: bytes, signature: str) -> SupplierResult | None:
        """The result a callback reports, or None when its signature is not the supplier's."""
        ...


class _Callback(msgspec.Struct):
    request_id: str
    supplier_ref: str
    status: SupplierStatus
    reason: str | None = None


class HttpSupplier:
    """The simulated supplier's protocol (deploy/suppliersim.py), which is shaped like the
    common 直充 APIs: submit with our request id, signed async callback, query for polling."""

    name = "sim"

    def __init__(self, base_url: str, secret: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret.encode()
        self.client = client

    async def submit(self, request_id: str, account: str, amount_cents: int, callback_url: str) -> SupplierResult:
        body = {
            "request_id": request_id,
            "account": account,
            "amount_cents": amount_cents,
            "callback_url": callback_url,
        }
        return await self._call("POST", "/topups", json=body)

    async def query(self, request_id: str) -> SupplierResult:
        return await self._call("GET", f"/topups/{request_id}")

    async def _call(self, method: str, path: str, **kwargs: object) -> SupplierResult:
        try:
            response = await self.client.request(method, self.base_url + path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise SupplierUnavailable(repr(exc)) from exc
        if response.status_code >= 500:
            raise SupplierUnavailable(f"supplier answered {response.status_code}")
        response.raise_for_status()
        data = response.json()
        return SupplierResult(
            request_id=data["request_id"],
            supplier_ref=data["supplier_ref"],
            status=data["status"],
            reason=data.get("reason"),
        )

    def verify_callback(self, body: bytes, signature: str) -> SupplierResult | None:
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature or ""):
            return None
        try:
            data = msgspec.json.decode(body, type=_Callback)
        except msgspec.MsgspecError:
            return None
        return SupplierResult(
            request_id=data.request_id, supplier_ref=data.supplier_ref, status=data.status, reason=data.reason
        )
