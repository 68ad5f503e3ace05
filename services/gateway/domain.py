"""The edge's pure rules: which requests an Idempotency-Key applies to and what makes two requests
"the same", rate-limit counters and their answer, which paths belong to the web pages. No I/O.

(The route table `routes.py`, the anonymous routes `public.py` and the partner signature
`signing.py` are pure rules too; each is one table or one algorithm, kept in its own module.)
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import Problem

# -- Idempotency-Key ---------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
MAX_STORED_BODY = 1024 * 1024
"""A response larger than this is not kept for replay (the retry reaches the service again)."""

# Responses that carry credentials (tokens, a new API key's secret, a TOTP seed) are never kept in
# Redis: for these routes the key is passed on to the service without edge memory.
_CREDENTIAL_RESPONSES = re.compile(r"/api/v1/(auth/(login|refresh)|me/api-keys|me/totp)/?")


@dataclass
class Claim:
    redis_key: str
    fingerprint: str


Command = tuple[Any, ...]
"""One Redis command, as the edge's pipeline sends it."""


@dataclass(frozen=True)
class ClaimRequest:
    """An Idempotency-Key claim the edge takes in its own round trip for the caller it admits
    (`store.IdempotencyStore.claim_request`): owner -> the claim's SET NX; owner -> its Redis
    key, deleted when the edge refuses the request after taking it."""

    take: Callable[[str], Command]
    redis_key: Callable[[str], str]


@dataclass
class Stored:
    status: int
    content_type: str | None
    body: bytes


def applies_to(method: str, path: str) -> bool:
    return method.upper() == "POST" and not _CREDENTIAL_RESPONSES.fullmatch(path)


def comparable_body(content_type: str, body: bytes) -> bytes:
    """The body with a multipart boundary taken out: clients draw a new random boundary each time
    they build a request, so the same upload sent again would otherwise look like another body."""
    if content_type.lower().startswith("multipart/"):
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if match:
            return body.replace(match.group(1).encode("latin-1"), b"<boundary>")
    return body


def fingerprint(secret: bytes, method: str, path: str, query: str, body: bytes) -> str:
    """Keyed, because a body may hold a password: a plain hash of it in Redis could be guessed."""
    message = b"\n".join([method.upper().encode(), path.encode(), query.encode(), body])
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def keep_response(status: int, body: bytes) -> bool:
    """Server errors, timeouts and 429s are not kept: a retry reaches the service again."""
    return status < 500 and status != 429 and len(body) <= MAX_STORED_BODY


# -- rate limits -------------------------------------------------------------------------------


def ip_key(ip: str) -> str:
    return f"rl:ip:{ip}"


def user_key(user_id: str) -> str:
    return f"rl:user:{user_id}"


def over_limit(result: list[int], limit: int, what: str) -> Problem | None:
    """The 429 for a counter result `[count, ttl_ms]` past `limit`, else None."""
    count, ttl_ms = int(result[0]), int(result[1])
    if count <= limit:
        return None
    seconds = max(1, math.ceil(ttl_ms / 1000))
    return Problem(
        429,
        "rate-limited",
        "Too Many Requests",
        f"more than {limit} requests {what} in the window; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


# -- path ids --------------------------------------------------------------------------------

# What a segment of a public API path may hold: RFC 3986's unreserved characters and the
# sub-delimiters that mean nothing special in a path. Every id, slug and code the services issue
# fits; anything else (control or non-ASCII characters, spaces, `%`, `?`, `#`, `\\`) names nothing.
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~:@!$&'()*+,;=]{1,200}")


def bad_path(relative: str) -> str | None:
    """Why `relative` (the decoded path after `/api/v1/`) cannot name a resource, or None.

    Checked at the edge so such a path never reaches a service: re-encoded into the upstream URL
    it would fail there (a control character), change meaning (`..`, an empty segment), or
    reach a database query as an id no service ever made."""
    segments = relative.split("/")
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash is the same resource
    for segment in segments:
        if segment in ("", ".", ".."):
            return "an empty or relative path segment"
        if not _SEGMENT.fullmatch(segment):
            return "a path segment with characters no id contains"
    return None


# -- pages -------------------------------------------------------------------------------------

NOT_WEB = ("api", "health", "schema", "metrics")
"""First path segments the gateway answers itself (or refuses); every other path is a web page."""


def is_web_page(relative: str) -> bool:
    return relative.split("/", 1)[0] not in NOT_WEB


# -- the public document's problems ------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` ends in a slug clients branch on.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status"],
}

# What the edge (or the shared service factory) may answer on any operation, whatever the service
# declares: a bad or missing token, an unknown id, a body or parameter that does not validate, a
# rate limit, a service or Redis that is down, a service that is slow.
EDGE_PROBLEMS = {
    "401": "Missing, expired or revoked credentials",
    "403": "The caller's role may not do this",
    "404": "No such resource (or an id no service issues)",
    "422": "The request does not validate; `errors` names each field",
    "429": "Rate limited; retry after `Retry-After` seconds",
    "503": "A service or its store is unavailable; retry after `Retry-After` seconds",
    "504": "A service did not answer in time",
}
CONFLICT = "Conflicts with the resource's current state; `type` names why"
_METHODS = ("get", "put", "post", "delete", "patch")


def with_edge_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every operation listing the problem+json answers the platform really gives, so
    clients generated from the document expect them (the services' own declarations stay)."""
    result = copy.deepcopy(doc)
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Problem", PROBLEM_SCHEMA)
    body = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in result.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "400" in responses:
                # A malformed body is a 400 problem (shared/errors.py), not the framework's JSON.
                responses["400"] = {**responses["400"], "content": body}
            for status, description in EDGE_PROBLEMS.items():
                responses.setdefault(status, {"description": description, "content": body})
            if method != "get":
                # A write may meet the resource's current state (a code already used, a status
                # that cannot change, a key being replayed): schemathesis found such 409s missing.
                responses.setdefault("409", {"description": CONFLICT, "content": body})
    return result


# -- OPTIONS -----------------------------------------------------------------------------------


def allowed_methods(paths: Mapping[str, Any], path: str) -> list[str] | None:
    """The `Allow` of a public path: the methods the OpenAPI document lists for the path template
    it matches (literal segments outrank parameters, as the services' routers do), and OPTIONS;
    None when no template matches. The document is what clients are promised, so OPTIONS says
    the same (issue 12: the framework's answer listed every method the gateway forwards)."""
    segments = path.strip("/").split("/")
    best: Mapping[str, Any] | None = None
    best_literals = -1
    for template, item in paths.items():
        parts = template.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        literals = 0
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
            elif part != segment:
                break
            else:
                literals += 1
        else:
            if literals > best_literals:
                best, best_literals = item, literals
    if best is None:
        return None
    return [m.upper() for m in _METHODS if m in best] + ["OPTIONS"]
