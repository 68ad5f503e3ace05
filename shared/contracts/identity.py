"""Events of the identity service (topic `identity.events`, keyed by user id)."""

from __future__ import annotations

from datetime import datetime

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
