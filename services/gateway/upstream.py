"""The gateway's clients of the services and the web process behind it: the keep-alive pool that
forwards requests (`Forwarder`), the httpx client of its own calls, timeouts, which headers
cross, and problem+json when an upstream is slow (504) or down (503)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import aiohttp
import httpx
from opentelemetry import propagate

from shared import edge_cache
from shared.errors import Problem

log = logging.getLogger(__name__)

# Not forwarded: hop-by-hop headers (RFC 9110 §7.6.1), ones httpx sets itself, and trace headers
# (the gateway's own span context is injected instead, so the trace goes caller -> gateway -> service).
DROP_REQUEST = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "traceparent",
    "tracestate",
}
# Credentials are replaced by what the edge verified: the partner signature headers never reach
# a service (it gets a token minted for the key's user instead).
DROP_EDGE = DROP_REQUEST | {"authorization", "x-api-key", "x-timestamp", "x-nonce", "x-signature"}
DROP_RESPONSE = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "date",
    "x-request-id",
    edge_cache.HEADER,
}


def no_cookie_jar() -> CookieJar:
    """A jar that keeps nothing. The gateway relays many callers over one client: a Set-Cookie
    from upstream (the web's session cookie) must reach its caller only, never be kept by the
    client and sent along with the next caller's request."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def create_upstream_client(max_connections: int, timeout: float, connect_timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        cookies=no_cookie_jar(),
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        # Idle connections are dropped well before uvicorn closes them (5 s), so a request is not
        # sent on a connection the service is closing at that moment (a ReadError, seen as 503).
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=2.0
        ),
        follow_redirects=False,
    )


@dataclass(frozen=True)
class Answer:
    """An upstream's answer as the gateway passes it on."""

    status: int
    headers: list[tuple[str, str]]
    """Every header as received (Set-Cookie may repeat), hop-by-hop ones (DROP_RESPONSE) left out."""
    body: bytes
    content_type: str | None
    declared: str = ""
    """The service's `x-kameng-edge-cache` declaration (shared.edge_cache), kept out of `headers`."""


class Forwarder:
    """The keep-alive pool that forwarded requests travel on (aiohttp). The httpx client cost
    more CPU per request than the rest of the gateway's hop, mostly in scanning its pooled
    connections (Decision 24); httpx stays for the gateway's own few calls (health, OpenAPI, API
    keys). The trace context is injected into each request's headers, so the service's server
    span continues the gateway's trace."""

    def __init__(self, max_connections: int, timeout: float, connect_timeout: float) -> None:
        self.max_connections = max_connections
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections,
                    # Idle connections are dropped well before uvicorn closes them (30 s), so a
                    # request is not sent on a connection the service is closing at that moment.
                    keepalive_timeout=2.0,
                ),
                timeout=self.timeout,
                # The gateway relays many callers over one session: a Set-Cookie from upstream (the
                # web's session cookie) must reach its caller only, never be sent with another's.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]],
        headers: list[tuple[str, str]],
        body: bytes,
        upstream: str,
    ) -> Answer:
        """One request to an upstream. A GET that met a pooled connection the upstream had just
        closed is sent once more; other methods are answered 503 (clients retry with their
        Idempotency-Key)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        outgoing = headers + list(carrier.items())

        async def once() -> Answer:
            async with self.session().request(
                method, url, params=params, headers=outgoing, data=body or None, allow_redirects=False
            ) as response:
                content = await response.read()
                return Answer(
                    status=response.status,
                    headers=[(k, v) for k, v in response.headers.items() if k.lower() not in DROP_RESPONSE],
                    body=content,
                    content_type=response.headers.get("content-type"),
                    declared=response.headers.get(edge_cache.HEADER, ""),
                )

        try:
            try:
                return await once()
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if method not in ("GET", "HEAD"):
                    raise
                return await once()
        except TimeoutError as exc:
            log.warning("%s timed out on %s %s: %r", upstream, method, url, exc)
            raise Problem(
                504, "upstream-timeout", "Gateway Timeout", f"the {upstream} service did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:
            log.warning("%s unreachable on %s %s: %r", upstream, method, url, exc)
            raise Problem(
                503,
                "service-unavailable",
                "Service Unavailable",
                f"the {upstream} service is not reachable",
                headers={"Retry-After": "5"},
            ) from exc


async def ready(client: httpx.AsyncClient, base: str) -> None:
    """An upstream's own readiness, for the gateway's `/health/ready`."""
    response = await client.get(f"{base}/health/ready", timeout=2.0)
    if response.status_code != 200:
        checks = (
            response.json().get("checks", {})
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        raise ConnectionError(f"not ready ({failing or response.status_code})")
