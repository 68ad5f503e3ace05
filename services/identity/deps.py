"""The identity service's one typed set of dependencies, built once at start-up
(`ServiceSpec(deps=build)`) and injected into controllers as `deps: IdentityDeps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from services.identity.denylist import DenyList
from services.identity.lockout import LoginGuard
from services.identity.notifier import Notifier
from services.identity.passwords import Passwords
from services.identity.secrets import SecretBox
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class IdentityDeps:
    settings: IdentitySettings
    store: IdentityStore
    uow: UnitOfWork
    """Runs a write and the events it emits in one transaction (the outbox)."""
    box: SecretBox
    """Seals secrets at rest and makes keyed look-up hashes."""
    passwords: Passwords
    guard: LoginGuard
    """Counts failed sign-ins and locks (Redis)."""
    denylist: DenyList
    """What the gateway enforces (Redis): denied access tokens, revoked API keys, current claims."""
    notifier: Notifier
    """Sends the one-time codes: email over SMTP, SMS through the SMS gateway."""
    clock: Callable[[], datetime] = field(default=_now)
    """Now, as an aware UTC datetime (fixed in unit tests)."""


def build(rt: Runtime) -> IdentityDeps:
    settings = cast(IdentitySettings, rt.settings)
    return IdentityDeps(
        settings=settings,
        store=IdentityStore(rt.mongo.db),
        uow=rt.uow,
        box=SecretBox(settings.identity_secrets_key.get_secret_value()),
        passwords=Passwords(settings),
        guard=LoginGuard(rt.redis, settings),
        denylist=DenyList(rt.redis, access_token_ttl_seconds=settings.access_token_ttl_seconds),
        notifier=Notifier(settings),
    )


def deps_from(rt: Runtime) -> IdentityDeps:
    """The runtime's deps, typed: for start-up hooks and background loops."""
    return cast(IdentityDeps, rt.deps)


def deps_of(ctx: HandlerContext) -> IdentityDeps:
    """The runtime's deps, typed: for event handlers."""
    return cast(IdentityDeps, ctx.deps)
