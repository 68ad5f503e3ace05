"""Brute-force protection on login, in Redis: failures are counted per account and per client
IP; reaching the limit locks that subject for a period that doubles with each lock in a row.

Keys (`{subject}` keeps one subject's keys in one Redis Cluster slot):
  login:fail:{<subject>}   failures in the current window (expires with the window)
  login:lock:{<subject>}   present while locked; its TTL is the Retry-After
  login:locks:{<subject>}  locks in a row (kept a day), so the next lock is longer
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.identity.settings import IdentitySettings
from shared.errors import Problem

# One round trip per failure: count it and, at the limit, lock and reset the count. The lock
# length is domain.lock_seconds (doubling from the base, capped), computed here atomically.
_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  local locks = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 86400)
  local seconds = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(locks - 1, 30))
  redis.call('SET', KEYS[2], '1', 'EX', math.floor(seconds))
  redis.call('DEL', KEYS[1])
  return math.floor(seconds)
end
return 0
"""


def _subject(kind: str, value: str) -> str:
    # Hashed so that neither logins nor IPs sit in Redis in the clear.
    return kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]


def _keys(subject: str) -> tuple[str, str, str]:
    return f"login:fail:{{{subject}}}", f"login:lock:{{{subject}}}", f"login:locks:{{{subject}}}"


class LoginGuard:
    def __init__(self, redis: Redis, settings: IdentitySettings) -> None:
        self.redis = redis
        self.settings = settings
        self._fail = redis.register_script(_FAIL)

    def _subjects(self, login: str, ip: str) -> list[tuple[str, int]]:
        s = self.settings
        return [
            (_subject("account", login), s.login_max_failures_per_account),
            (_subject("ip", ip), s.login_max_failures_per_ip),
        ]

    async def check(self, login: str, ip: str) -> None:
        """429 with Retry-After while the account or the IP is locked."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for subject, _ in self._subjects(login, ip):
                    pipe.ttl(_keys(subject)[1])
                ttls = await pipe.execute()
        except RedisError as exc:
            # Fail closed: without the counters, guessing would be unlimited.
            raise Problem(
                503,
                "service-unavailable",
                "Service Unavailable",
                "sign-in is unavailable for a moment",
                headers={"Retry-After": "5"},
            ) from exc
        wait = max((int(t) for t in ttls if int(t) > 0), default=0)
        if wait:
            raise too_many_attempts(wait)

    async def failed(self, login: str, ip: str) -> None:
        s = self.settings
        locked = 0
        for subject, limit in self._subjects(login, ip):
            seconds = await self._fail(
                keys=list(_keys(subject)),
                args=[s.login_failure_window_seconds, limit, s.login_lock_base_seconds, s.login_lock_max_seconds],
            )
            locked = max(locked, int(seconds))
        if locked:
            raise too_many_attempts(locked)

    async def succeeded(self, login: str) -> None:
        subject = _subject("account", login)
        fail, _, locks = _keys(subject)
        await self.redis.delete(fail, locks)


def too_many_attempts(seconds: int) -> Problem:
    return Problem(
        429,
        "too-many-attempts",
        "Too many attempts",
        f"too many failed sign-ins; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
