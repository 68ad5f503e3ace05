"""Forwarding a public request to its service, once the edge has admitted it (edge.py): pooled
httpx client, timeouts, trace and request-id propagation, problem+json when the service is slow
(504) or down (503)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from litestar import Request, Response, route
from litestar.enums import HttpMethod
from redis.exceptions import RedisError

from services.gateway.edge import Edge
from services.gateway.idempotency import HEADER as IDEMPOTENCY_HEADER
from services.gateway.idempotency import (
    REPLAYED_HEADER,
    Claim,
    Idempotency,
    Stored,
    applies_to,
    comparable_body,
    fingerprint,
)
from services.gateway.routes import owner_of
from shared.errors import Problem

log = logging.getLogger(__name__)

# Not forwarded: hop-by-hop headers (RFC 9110 §7.6.1), ones httpx sets itself, and trace headers
# (the gateway's own span context is injected instead, so the trace goes caller -> gateway -> service).
_DROP_REQUEST = {
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
_DROP_EDGE = _DROP_REQUEST | {"authorization", "x-api-key", "x-timestamp", "x-nonce", "x-signature"}
_DROP_RESPONSE = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "date",
    "x-request-id",
}


def create_upstream_client(max_connections: int, timeout: float, connect_timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        # Idle connections are dropped well before uvicorn closes them (5 s), so a request is not
        # sent on a connection the service is closing at that moment (a ReadError, seen as 503).
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=2.0
        ),
        follow_redirects=False,
    )


@route(
    "/api/v1/{path:path}",
    http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE],
    include_in_schema=False,
)
async def forward(request: Request[Any, Any, Any], path: str) -> Response[bytes]:
    relative = path.lstrip("/")
    service = owner_of(relative)
    if service is None:
        raise Problem(404, "not-found", "Not found", f"no API at /api/v1/{relative}")
    settings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.upstream
    base = settings.upstreams()[service]
    body = await request.body()
    edge: Edge = request.app.state.edge
    try:
        admitted = await edge.admit(request, relative, body)
    except RedisError as exc:
        raise _redis_down(exc) from exc
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_EDGE}
    if admitted.authorization:
        headers["authorization"] = admitted.authorization
    headers["x-request-id"] = request.scope["state"].get("request_id", "")
    headers["x-forwarded-for"] = request.client.host if request.client else ""
    headers["x-forwarded-proto"] = request.url.scheme
    claim: Claim | None = None
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and applies_to(request.method, request.url.path):
        idempotency: Idempotency = request.app.state.idempotency
        owner = admitted.caller.user_id if admitted.caller else "ip:" + (request.client.host if request.client else "")
        try:
            found = await idempotency.begin(
                owner,
                key,
                fingerprint(
                    idempotency.secret,
                    request.method,
                    request.url.path,
                    request.url.query,
                    comparable_body(request.headers.get("content-type", ""), body),
                ),
            )
        except RedisError as exc:
            raise _redis_down(exc) from exc
        if isinstance(found, Stored):
            return Response(
                content=found.body,
                status_code=found.status,
                headers={REPLAYED_HEADER: "true"},
                media_type=found.content_type,
            )
        claim = found
    try:
        upstream = await _send(client, request, f"{base}/api/v1/{relative}", headers, body, service, relative)
    except BaseException:
        if claim is not None:
            await request.app.state.idempotency.abandon(claim)
        raise
    if claim is not None:
        try:
            await request.app.state.idempotency.finish(
                claim, upstream.status_code, upstream.headers.get("content-type"), upstream.content
            )
        except RedisError as exc:
            # The service has answered; the caller gets the answer, only a replay is lost.
            log.warning("could not keep the response of an idempotent request: %r", exc)
    return Response(
        content=upstream.content,
        status_code=upstream.status_code,
        headers={k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE},
        media_type=upstream.headers.get("content-type"),
    )


async def _send(
    client: httpx.AsyncClient,
    request: Request[Any, Any, Any],
    url: str,
    headers: dict[str, str],
    body: bytes,
    service: str,
    relative: str,
) -> httpx.Response:
    async def send() -> httpx.Response:
        return await client.request(
            request.method, url, params=list(request.query_params.multi_items()), headers=headers, content=body
        )

    try:
        try:
            return await send()
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # A pooled connection the service had just closed. Safe to send once more only when
            # the method has no effect; other methods are answered 503 (clients retry with their
            # Idempotency-Key).
            if request.method not in ("GET", "HEAD"):
                raise
            return await send()
    except httpx.TimeoutException as exc:
        log.warning("%s timed out on %s %s: %r", service, request.method, relative, exc)
        raise Problem(
            504, "upstream-timeout", "Gateway Timeout", f"the {service} service did not answer in time"
        ) from exc
    except httpx.TransportError as exc:
        log.warning("%s unreachable on %s %s: %r", service, request.method, relative, exc)
        raise Problem(
            503,
            "service-unavailable",
            "Service Unavailable",
            f"the {service} service is not reachable",
            headers={"Retry-After": "5"},
        ) from exc


def _redis_down(exc: RedisError) -> Problem:
    # Without Redis the edge can check neither limits, nonces nor revocations: refuse, retryably.
    log.warning("redis unavailable at the edge: %r", exc)
    return Problem(
        503,
        "service-unavailable",
        "Service Unavailable",
        "the gateway cannot check this request now",
        headers={"Retry-After": "5"},
    )
