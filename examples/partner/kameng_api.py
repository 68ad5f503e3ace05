"""Signed calls to Kameng's public API with a partner API key (docs/partner-events.md).

Each request carries `X-Api-Key`, `X-Timestamp` (Unix seconds), `X-Nonce` (fresh per request) and
`X-Signature` = hex HMAC-SHA256 with the key's secret of

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

Only httpx and the standard library, so a partner can copy this file as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class PartnerApi:
    """`PartnerApi(gateway_url, key_id, secret)`: `.get(path)`, `.post(path, json_body)`."""

    def __init__(self, gateway_url: str, key_id: str, secret: str, *, timeout: float = 30) -> None:
        self.key_id = key_id
        self.secret = secret
        self.client = httpx.Client(base_url=gateway_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_urlsafe(16)
        signed = {
            "X-Api-Key": self.key_id,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": signature(self.secret, method, path, timestamp, nonce, raw),
            **({"content-type": "application/json"} if body is not None else {}),
            **(headers or {}),
        }
        return self.client.request(method, path, content=raw, headers=signed)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("POST", path, body, headers)
