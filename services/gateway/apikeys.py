"""Partner API keys as the gateway sees them: fetched from identity's internal API, kept for a few
seconds in this process (never in Redis: the entry holds the secret). A revoked key stops working
at once anyway, because identity also sets a revocation marker in Redis that the gateway checks
on every signed request."""

from __future__ import annotations

import logging
import re
import time

import httpx
import msgspec

from shared.auth import issue_access_token
from shared.contracts.identity import INTERNAL_API_KEY_PATH, ApiKeyCredentials
from shared.errors import Problem

log = logging.getLogger(__name__)

KEY_ID = re.compile(r"ak_[0-9a-f]{24}")
_MAX_ENTRIES = 10_000


class ApiKeyDirectory:
    def __init__(self, client: httpx.AsyncClient, identity_url: str, jwt_secret: str, ttl_seconds: float) -> None:
        self._client = client
        self._identity = identity_url
        self._secret = jwt_secret
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, ApiKeyCredentials | None]] = {}

    async def get(self, key_id: str) -> ApiKeyCredentials | None:
        if not KEY_ID.fullmatch(key_id):
            return None
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self._fetch(key_id)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key_id] = (now + self._ttl, found)
        return found

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def _fetch(self, key_id: str) -> ApiKeyCredentials | None:
        token = issue_access_token(self._secret, user_id="gateway", roles=["internal"], level="retail", ttl_seconds=60)
        try:
            response = await self._client.get(
                self._identity + INTERNAL_API_KEY_PATH.format(key_id=key_id),
                headers={"Authorization": f"Bearer {token}"},
                timeout=3.0,
            )
        except httpx.HTTPError as exc:
            log.warning("identity unreachable for an API key lookup: %r", exc)
            raise Problem(
                503,
                "service-unavailable",
                "Service Unavailable",
                "cannot check the API key now",
                headers={"Retry-After": "5"},
            ) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            log.warning("identity answered %s to an API key lookup", response.status_code)
            raise Problem(503, "service-unavailable", "Service Unavailable", "cannot check the API key now")
        return msgspec.json.decode(response.content, type=ApiKeyCredentials)
