"""Fixed-window request counters in Redis (per client IP and per user).

A window starts with its first request and lasts `window` seconds; the key's remaining life is
the Retry-After when the limit is hit. One Lua call per counter (one key each, so it also runs on
Redis Cluster), all sent in one pipeline with the other checks of the request.
"""

from __future__ import annotations

import math

from shared.errors import Problem

HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


def ip_key(ip: str) -> str:
    return f"rl:ip:{ip}"


def user_key(user_id: str) -> str:
    return f"rl:user:{user_id}"


def over_limit(result: list[int], limit: int, what: str) -> Problem | None:
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
