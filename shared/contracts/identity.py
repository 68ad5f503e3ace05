"""Events of the identity service (topic `identity.events`, keyed by user id)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from shared.contracts import topics
from shared.contracts.registry import Event, event


@event("identity.user-registered", topic=topics.IDENTITY, key="user_id")
class UserRegistered(Event, frozen=True, kw_only=True):
    """A new account. The wallet opens an account for it; support keeps its contact details."""

    user_id: str
    email: str | None = None
    phone: str | None = None
    level: str = "retail"
    roles: list[str] = []


@event("identity.user-verified", topic=topics.IDENTITY, key="user_id")
class UserVerified(Event, frozen=True, kw_only=True):
    """Real-name verification (实名认证) passed. Carries no name or ID number."""

    user_id: str
    verified_at: datetime


@event("identity.level-changed", topic=topics.IDENTITY, key="user_id")
class LevelChanged(Event, frozen=True, kw_only=True):
    """The member level that prices are chosen by (retail, vip, agent, wholesale)."""

    user_id: str
    level: str
    previous_level: str


@event("identity.roles-changed", topic=topics.IDENTITY, key="user_id")
class RolesChanged(Event, frozen=True, kw_only=True):
    user_id: str
    roles: list[str]


@event("identity.contact-changed", topic=topics.IDENTITY, key="user_id")
class ContactChanged(Event, frozen=True, kw_only=True):
    """A bound email or phone changed (after its one-time code was confirmed)."""

    user_id: str
    email: str | None = None
    phone: str | None = None


@event("identity.api-key-revoked", topic=topics.IDENTITY, key="user_id")
class ApiKeyRevoked(Event, frozen=True, kw_only=True):
    user_id: str
    key_id: str


# Not events: the small contract between identity and the gateway, which enforces at the edge
# what identity decides (both sides import these so the names cannot drift apart).


def denied_access_token_key(jti: str) -> str:
    """Redis key identity sets at logout (TTL = the token's remaining life); the gateway refuses
    an access token whose `jti` is listed."""
    return f"auth:denied:{jti}"


def revoked_api_key_key(key_id: str) -> str:
    """Redis key identity sets when a partner key is revoked, so the gateway stops honouring it at
    once instead of when its short cache of the key expires."""
    return f"apikey:revoked:{key_id}"


INTERNAL_API_KEY_PATH = "/internal/api-keys/{key_id}"
"""identity's internal route (not under /api/v1, so never reachable through the gateway) that
the gateway calls, with a token carrying role `internal`, to check a partner signature."""


class ApiKeyCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What identity tells the gateway about an active partner key."""

    key_id: str
    user_id: str
    secret: str
    roles: list[str]
    level: str
