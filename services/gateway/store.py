"""Everything the gateway keeps, all in Redis and all short-lived: Idempotency-Key records and the
rate-limit counters' script. (The edge's per-request checks run in one pipeline: `edge.py`.)

Idempotency records, per caller (user id, or client address when anonymous), kept for
`IDEMPOTENCY_TTL_SECONDS`: first a *pending* marker with the request's fingerprint and when it
was taken (SET NX, so of two concurrent requests one goes through), then the response. This is
the edge's fast answer to retries; a service that moves money or stock still makes the effect
itself idempotent (`shared/idempotency.py`), since Redis may lose data.

A key whose request reached a service without an answer kept for replay (the forward failed,
the service answered 5xx) is marked *unsettled*, not forgotten; so is, by its age, a pending
marker older than `IDEMPOTENCY_PENDING_SECONDS` (its gateway died mid-request). A retry of such
a key takes it over and goes to the service, which knows what the first attempt did (an order
placed under the key is replayed). What the marker prevents is the retry being taken for a new
key: a new key may be answered from a kept refusal (Decision 35), and that would tell a buyer
whose first attempt placed an order that it was sold out. Only a claim the edge took and undid
before forwarding (a rate limit, a revoked token) is deleted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis.exceptions import NoScriptError

from services.gateway.domain import Claim, ClaimRequest, Command, Stored, keep_response
from shared.errors import Problem
from shared.idempotency import invalid_key, key_reused, valid_key

# Fixed-window counter: a window starts with its first request and lasts `window` ms; the key's
# remaining life is the Retry-After when the limit is hit. One key per call, so it also runs on
# Redis Cluster; the edge sends all of a request's counters in one pipeline.
HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


HIT_SHA = hashlib.sha1(HIT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by their SHA-1)


def hit(key: str, window_ms: int) -> Command:
    """The rate-limit counter of `key` as a pipeline command (EVALSHA of HIT)."""
    return ("EVALSHA", HIT_SHA, 1, key, window_ms)


class Batches(Protocol):
    """Where the edge sends its one round trip (shared.redis_client.CommandLink; a fake in tests)."""

    async def send(self, commands: Sequence[Command]) -> list[Any]: ...


async def run_pipeline(link: Batches, commands: Sequence[Command]) -> list[Any]:
    """`commands` in one round trip; their results in order (the first error raised).

    Scripts go by their sha: redis-py's own script objects make a pipeline ask `SCRIPT EXISTS`
    first, a second round trip on every request (Decision 24). When Redis does not know HIT
    (it restarted, or this is its first use), it is loaded and only the refused commands run
    again: the others (a nonce's SET NX) must not run twice."""
    results = await link.send(commands)
    refused = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if refused:
        retried = await link.send([("SCRIPT", "LOAD", HIT), *(commands[i] for i in refused)])
        for i, result in zip(refused, retried[1:], strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


async def run_one(link: Batches, *command: Any) -> Any:
    """One command on the edge's link: its reply, or its error raised."""
    (reply,) = await link.send([command])
    if isinstance(reply, Exception):
        raise reply
    return reply


def _in_progress(detail: str) -> Problem:
    return Problem(409, "idempotency-in-progress", "Request in progress", detail, headers={"Retry-After": "1"})


# Compare-and-set of one key: replace the record read (ARGV[1]) by ARGV[2] with a TTL of ARGV[3]
# seconds, only if it is still that record. Of two retries taking over one key, one wins.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class IdempotencyStore:
    def __init__(
        self,
        link: Batches,
        *,
        secret: str,
        ttl_seconds: int,
        pending_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.secret = hashlib.sha256(b"kameng-idempotency\n" + secret.encode()).digest()
        self.ttl = ttl_seconds
        self.pending = pending_seconds
        self.clock = clock

    def _redis_key(self, owner: str, key: str) -> str:
        return f"idem:{owner}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    def _pending_record(self, fp: str) -> str:
        return json.dumps({"fp": fp, "since": round(self.clock(), 3)})

    def _take(self, owner: str, key: str, fp: str) -> Command:
        return ("SET", self._redis_key(owner, key), self._pending_record(fp), "NX", "EX", self.ttl)

    def claim_request(self, key: str, fp: str) -> ClaimRequest | None:
        """The claim of `key` for the edge to take in its own round trip (then `begin(...,
        claimed=True)`); None for a key `begin` will refuse anyway."""
        if not valid_key(key):
            return None
        return ClaimRequest(
            take=lambda owner: self._take(owner, key, fp), redis_key=lambda owner: self._redis_key(owner, key)
        )

    def _unsettled(self, record: dict[str, Any]) -> bool:
        """A record whose request reached a service and left no answer to replay: marked so, or
        pending for longer than a request may take (the gateway that held it is gone). Markers
        written before `since` existed lapse by their own short TTL."""
        if record.get("unsettled"):
            return True
        since = record.get("since")
        return isinstance(since, int | float) and self.clock() - since > self.pending

    async def begin(self, owner: str, key: str, fp: str, *, claimed: bool = False) -> Claim | Stored:
        """A Claim to go ahead, or the Stored response of the first request with this key.
        `claimed`: the edge has already taken the claim (`claim_request`)."""
        if not valid_key(key):
            raise invalid_key()
        redis_key = self._redis_key(owner, key)
        if claimed:
            return Claim(redis_key, fp)
        for _ in range(3):
            pending = self._pending_record(fp)
            if await run_one(self.link, "SET", redis_key, pending, "NX", "EX", self.ttl):
                return Claim(redis_key, fp)
            raw = await run_one(self.link, "GET", redis_key)
            if raw is None:
                continue  # expired between the two commands
            record: dict[str, Any] = json.loads(raw)
            if record["fp"] != fp:
                raise key_reused()
            if "status" in record:
                return Stored(record["status"], record.get("content_type"), base64.b64decode(record["body"]))
            if not self._unsettled(record):
                raise _in_progress("the first request with this Idempotency-Key has not finished yet")
            if await run_one(self.link, "EVAL", _TAKE_OVER, 1, redis_key, raw, pending, self.ttl):
                return Claim(redis_key, fp)  # the service tells what the first attempt did
        raise _in_progress("retry shortly")

    async def finish(self, claim: Claim, status: int, content_type: str | None, body: bytes) -> None:
        if not keep_response(status, body):
            await self.abandon(claim)
            return
        record = {
            "fp": claim.fingerprint,
            "status": status,
            "content_type": content_type,
            "body": base64.b64encode(body).decode(),
        }
        await run_one(self.link, "SET", claim.redis_key, json.dumps(record), "EX", self.ttl)

    async def abandon(self, claim: Claim) -> None:
        """The request went to a service and has no answer to replay: a retry goes to the
        service again, and is never taken for a new key."""
        record = json.dumps({"fp": claim.fingerprint, "unsettled": True})
        await run_one(self.link, "SET", claim.redis_key, record, "EX", self.ttl)
