"""What identity tells the gateway, in Redis: access tokens of ended sessions and revoked partner
API keys to refuse, and the current level and roles of accounts an admin changed (so tokens
issued before the change are forwarded with the new claims). The gateway reads these keys with
every request; services behind it do not."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.contracts.identity import current_claims_key, denied_access_token_key, revoked_api_key_key

# The gateway caches a key for a few seconds; the revocation marker must outlive that cache.
REVOKED_MARKER_SECONDS = 24 * 3600


# Sets the claims only when `version` is newer than the stored one: two admins' changes landing
# in Redis out of order leave the later state.
SET_CLAIMS = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'level', ARGV[2], 'roles', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class DenyList:
    def __init__(self, redis: Redis, *, access_token_ttl_seconds: int) -> None:
        self.redis = redis
        # The exact expiry of older access tokens is not stored, so each is listed for a full
        # access-token life (plus leeway): by then it would have expired anyway.
        self._token_ttl = access_token_ttl_seconds + 10

    async def deny_access_tokens(self, jtis: list[str]) -> None:
        if not jtis:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for jti in jtis:
                pipe.set(denied_access_token_key(jti), "1", ex=self._token_ttl)
            await pipe.execute()

    async def publish_claims(self, user_id: str, *, version: int, level: str, roles: list[str]) -> None:
        """The account's level and roles after an admin's change, for the gateway to apply to
        tokens issued before it. Kept one access-token life: every token older than the change
        has expired by then."""
        await self.redis.eval(  # type: ignore[misc]
            SET_CLAIMS,
            1,
            current_claims_key(user_id),
            str(version),
            level,
            ",".join(sorted(set(roles))),
            str(self._token_ttl),
        )

    async def revoke_api_key(self, key_id: str) -> None:
        await self.redis.set(revoked_api_key_key(key_id), "1", ex=REVOKED_MARKER_SECONDS)
