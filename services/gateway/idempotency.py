"""`Idempotency-Key` on POST (api.md): the same key and body get the same response, the same key
with another body is 422, and a retry that arrives while the first is still running is 409.

Kept in Redis per caller (user id, or client address when anonymous), for `IDEMPOTENCY_TTL_SECONDS`:
first a *pending* marker with the request's fingerprint (SET NX, so of two concurrent requests one
goes through), then the response. Server errors, timeouts and 429s are not kept: the marker is
removed and a retry reaches the service again. This is the edge's fast answer to retries; a service
that moves money or stock still makes the effect itself idempotent (ledger keys, order ids), since
Redis may lose data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared.errors import Problem

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
_MAX_KEY_LENGTH = 255
_MAX_STORED_BODY = 1024 * 1024


@dataclass
class Claim:
    redis_key: str
    fingerprint: str


@dataclass
class Stored:
    status: int
    content_type: str | None
    body: bytes


# Responses that carry credentials (tokens, a new API key's secret, a TOTP seed) are never kept in
# Redis: for these routes the key is passed on to the service without edge memory.
_CREDENTIAL_RESPONSES = re.compile(r"/api/v1/(auth/(login|refresh)|me/api-keys|me/totp)/?")


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


class Idempotency:
    def __init__(self, redis: Redis, *, secret: str, ttl_seconds: int, pending_seconds: int) -> None:
        self.redis = redis
        self.secret = hashlib.sha256(b"kameng-idempotency\n" + secret.encode()).digest()
        self.ttl = ttl_seconds
        self.pending = pending_seconds

    async def begin(self, owner: str, key: str, fp: str) -> Claim | Stored:
        """A Claim to go ahead, or the Stored response of the first request with this key."""
        if not 1 <= len(key) <= _MAX_KEY_LENGTH or not key.isprintable():
            raise Problem(
                422,
                "validation-error",
                "Invalid request",
                "Idempotency-Key must be 1 to 255 printable characters",
                errors=[{"field": "Idempotency-Key", "message": "1 to 255 printable characters"}],
            )
        redis_key = f"idem:{owner}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
        for _ in range(3):
            if await self.redis.set(redis_key, json.dumps({"fp": fp}), nx=True, ex=self.pending):
                return Claim(redis_key, fp)
            raw = await self.redis.get(redis_key)
            if raw is None:
                continue  # expired between the two commands
            record: dict[str, Any] = json.loads(raw)
            if record["fp"] != fp:
                raise Problem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "this Idempotency-Key was used with a different request",
                )
            if "status" not in record:
                raise Problem(
                    409,
                    "idempotency-in-progress",
                    "Request in progress",
                    "the first request with this Idempotency-Key has not finished yet",
                    headers={"Retry-After": "1"},
                )
            return Stored(record["status"], record.get("content_type"), base64.b64decode(record["body"]))
        raise Problem(
            409, "idempotency-in-progress", "Request in progress", "retry shortly", headers={"Retry-After": "1"}
        )

    async def finish(self, claim: Claim, status: int, content_type: str | None, body: bytes) -> None:
        if status >= 500 or status == 429 or len(body) > _MAX_STORED_BODY:
            await self.abandon(claim)
            return
        record = {
            "fp": claim.fingerprint,
            "status": status,
            "content_type": content_type,
            "body": base64.b64encode(body).decode(),
        }
        await self.redis.set(claim.redis_key, json.dumps(record), ex=self.ttl)

    async def abandon(self, claim: Claim) -> None:
        await self.redis.delete(claim.redis_key)
