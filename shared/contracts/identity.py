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
    site: str | None = None
    """The agent's sub-site (slug) the buyer signed up on; None on the main site."""


@event("identity.user-verified", topic=topics.IDENTITY, key="user_id")
class UserVerified(Event, frozen=True, kw_only=True):
    """Real-name verification (实名认证) passed. Carries no name or ID number."""

    user_id: str
    verified_at: datetime
    person: str | None = None
    """An opaque keyed fingerprint of the verified person (never the ID number), the same for
    every account that person verifies: what "one per person" rules (trials) count by."""


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


@event("identity.api-key-created", topic=topics.IDENTITY, key="user_id")
class ApiKeyCreated(Event, frozen=True, kw_only=True):
    """A partner API key was created (never its secret). Support opens the account's partner
    feed topic on the first one (docs/partner-events.md)."""

    user_id: str
    key_id: str


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


def current_claims_key(user_id: str) -> str:
    """Redis hash identity sets when an admin changes an account's level or roles:
    `{version, level, roles}` (roles comma-joined), kept one access-token life (plus leeway). The
    gateway reads it in the same round trip as the deny-list and forwards a token re-minted with
    these claims when the caller's token carries others, so the change holds from the very next
    request instead of the next refresh (docs/architecture.md, Decision 19). `version` is the
    account document's version: an older write never overwrites a newer one."""
    return f"auth:claims:{user_id}"


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
