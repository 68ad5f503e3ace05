"""Partners' webhook URLs, over HTTP (httpx): POSTs one delivery and reports what happened.

Redirects are not followed: a webhook answers at the URL the partner registered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from services.support.settings import SupportSettings


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    """None when no answer came (refused, timed out)."""
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(self, settings: SupportSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # Opened on first use, inside the running event loop, and kept for the process.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False)
        return self._client

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(url, content=body, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        return Attempt(status_code=status_code, error=error, duration_ms=int((time.monotonic() - started) * 1000))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
