"""What the gateway does with a request: admit it at the edge (edge.py), answer a repeated
Idempotency-Key from the store or a catalog read from what it keeps (cache.py), forward it to the
service that owns the path (routes.py) or to the web process, and keep the answer for replay."""

from __future__ import annotations

import json
import logging
from typing import Any

from litestar import Request
from litestar.response.base import ASGIResponse
from redis.exceptions import RedisError

from services.gateway import upstream
from services.gateway.cache import Lookup
from services.gateway.deps import GatewayDeps
from services.gateway.domain import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    Claim,
    ClaimRequest,
    Command,
    Stored,
    allowed_methods,
    applies_to,
    bad_path,
    comparable_body,
    fingerprint,
    is_web_page,
    with_edge_problems,
)
from services.gateway.routes import owner_of
from shared.auth import Caller
from shared.errors import Problem

log = logging.getLogger(__name__)


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


async def _body(request: Request[Any, Any, Any]) -> bytes:
    """The request's body; a request that announces none (most GETs) is not read, which saves
    the framework's receive loop on every browse."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return b""
    return await request.body()


def _query(request: Request[Any, Any, Any]) -> str:
    """The query string as received (what `request.url.query` gives, without building the URL
    object: that cost a measurable share of a kept answer's time)."""
    return request.scope.get("query_string", b"").decode()


def _client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


async def forward_api(deps: GatewayDeps, request: Request[Any, Any, Any], path: str) -> ASGIResponse:
    """`/api/v1/<path>`: admitted by the edge, replayed or forwarded to the owning service."""
    relative = path.lstrip("/")
    why = bad_path(relative)
    if why is not None:
        raise Problem(404, "not-found", "Not found", f"no such resource: {why}")
    service = owner_of(relative)
    if service is None:
        raise Problem(404, "not-found", "Not found", f"no API at /api/v1/{relative}")
    body = await _body(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    fp: str | None = None
    wanted: ClaimRequest | None = None
    if key is not None and applies_to(request.method, request.url.path):
        fp = fingerprint(
            deps.idempotency.secret,
            request.method,
            request.url.path,
            request.url.query,
            comparable_body(request.headers.get("content-type", ""), body),
        )
        wanted = deps.idempotency.claim_request(key, fp)
    lookup: Lookup | None = None

    def reads(caller: Caller | None) -> tuple[Command, ...]:
        nonlocal lookup
        lookup = deps.kept.lookup(
            relative, _query(request), body, caller.level if caller else None, caller.user_id if caller else None
        )
        return lookup.reads

    candidate = deps.kept.candidate(request.method, service, relative, request.headers)
    try:
        # A signed-in caller's claim of the key rides in the edge's round trip (Decision 24), and
        # so do the facts a kept answer depends on (Decision 33).
        admitted = await deps.edge.admit(request, relative, body, wanted, reads if candidate else None)
    except RedisError as exc:
        raise _redis_down(exc) from exc
    level = admitted.caller.level if admitted.caller else None
    # A kept refusal answers a POST only when its Idempotency-Key (if any) is new: the key's
    # first answer is then this one, recorded for replay like a forwarded answer.
    fresh_key = key is None or fp is None or admitted.claimed
    if lookup is not None and fresh_key and (kept := deps.kept.answer(lookup, admitted.read, level)) is not None:
        if admitted.claimed and key is not None and fp is not None and admitted.caller is not None:
            await _record(deps, admitted.caller.user_id, key, fp, kept.status, kept.headers, kept.body)
        return ASGIResponse(body=kept.body, status_code=kept.status, headers=kept.headers)
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in upstream.DROP_EDGE]
    if admitted.authorization:
        headers.append(("authorization", admitted.authorization))
    headers += [
        ("x-request-id", request.scope["state"].get("request_id", "")),
        ("x-forwarded-for", _client_address(request)),
        ("x-forwarded-proto", request.scope.get("scheme", "http")),
    ]

    claim: Claim | None = None
    if key is not None and fp is not None:
        owner = admitted.caller.user_id if admitted.caller else "ip:" + _client_address(request)
        try:
            found = await deps.idempotency.begin(owner, key, fp, claimed=admitted.claimed)
        except RedisError as exc:
            raise _redis_down(exc) from exc
        if isinstance(found, Stored):
            replayed = [(REPLAYED_HEADER, "true")]
            if found.content_type:
                replayed.append(("content-type", found.content_type))
            return ASGIResponse(body=found.body, status_code=found.status, headers=replayed)
        claim = found
    try:
        answer = await deps.forwarder.send(
            request.method,
            f"{deps.upstreams[service]}/api/v1/{relative}",
            params=list(request.query_params.multi_items()),
            headers=headers,
            body=body,
            upstream=service,
        )
    except BaseException:
        if claim is not None:
            await deps.idempotency.abandon(claim)
        raise
    if lookup is not None:
        deps.kept.keep(lookup, request.method, level, answer.status, answer.headers, answer.body, answer.declared)
    if claim is not None:
        try:
            await deps.idempotency.finish(claim, answer.status, answer.content_type, answer.body)
        except RedisError as exc:
            # The service has answered; the caller gets the answer, only a replay is lost.
            log.warning("could not keep the response of an idempotent request: %r", exc)
    # Passed on as received: no re-encoding, every header (Set-Cookie may repeat) kept.
    return ASGIResponse(body=answer.body, status_code=answer.status, headers=answer.headers)


async def _record(
    deps: GatewayDeps, owner: str, key: str, fp: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Keep a kept answer as the first answer to the Idempotency-Key the edge claimed for it."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    try:
        claim = await deps.idempotency.begin(owner, key, fp, claimed=True)
        if isinstance(claim, Claim):
            await deps.idempotency.finish(claim, status, content_type, body)
    except RedisError as exc:
        # The caller gets the answer; only a replay is lost (the claim lapses, a retry is new).
        log.warning("could not keep the response of an idempotent request: %r", exc)


async def forward_page(deps: GatewayDeps, request: Request[Any, Any, Any], path: str | None) -> ASGIResponse:
    """Everything that is not the API goes to the web process (pages, `/static/`, `/admin/`).
    The web answers HTML with its own cookies, so headers pass through as they are (every
    Set-Cookie kept); the edge's API rules (tokens, rate limits, idempotency) do not apply."""
    relative = (path or "").lstrip("/")
    if not is_web_page(relative):
        raise Problem(404, "not-found", "Not found", f"nothing at /{relative}")
    if not deps.settings.web_url:
        raise Problem(404, "not-found", "Not found", "no web storefront is configured")
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in upstream.DROP_REQUEST]
    headers += [
        ("x-request-id", request.scope["state"].get("request_id", "")),
        ("x-forwarded-for", _client_address(request)),
        ("x-forwarded-proto", request.scope.get("scheme", "http")),
        ("x-forwarded-host", request.headers.get("host", "")),
    ]
    answer = await deps.forwarder.send(
        request.method,
        f"{deps.settings.web_url.rstrip('/')}/{relative}",
        params=list(request.query_params.multi_items()),
        headers=headers,
        body=await request.body(),
        upstream="web",
    )
    return ASGIResponse(body=answer.body, status_code=answer.status, headers=answer.headers)


async def openapi_document(deps: GatewayDeps, own: dict[str, Any]) -> bytes:
    """The public OpenAPI document: the gateway's own routes merged with every service's."""
    return json.dumps(with_edge_problems(await deps.openapi.get(own))).encode()


async def allow(deps: GatewayDeps, request: Request[Any, Any, Any], path: str) -> ASGIResponse:
    """OPTIONS on a public path: 204 with the methods the public document lists for it."""
    document = await deps.openapi.get(request.app.openapi_schema.to_schema())
    methods = allowed_methods(document.get("paths", {}), f"/api/v1/{path.lstrip('/')}")
    if methods is None:
        raise Problem(404, "not-found", "Not Found", "no such path in the public API")
    return ASGIResponse(body=b"", status_code=204, headers={"Allow": ", ".join(methods)})
