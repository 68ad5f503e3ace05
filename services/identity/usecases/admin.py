"""Admin management of accounts: member level and roles, each change an event (catalog and order
price by level; services react to roles), and the first admin created at start."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from services.identity.deps import IdentityDeps
from services.identity.domain import field_error, is_level, normalize_email, roles_problem
from services.identity.usecases.auth import create_user
from shared.auth import LEVELS, Caller
from shared.contracts.identity import LevelChanged, RolesChanged
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)


async def user(deps: IdentityDeps, user_id: str) -> dict[str, Any]:
    found = await deps.store.user_view(user_id)
    if found is None:
        raise not_found("user")
    return found


async def set_level(deps: IdentityDeps, user_id: str, level: str) -> dict[str, Any]:
    """Set the member level; `identity.level-changed` (with the previous level) when it changed.
    The account's view afterwards."""
    if not is_level(level):
        raise field_error("level", f"must be one of {', '.join(LEVELS)}")

    async def write(tx: Tx) -> dict[str, Any]:
        before = await deps.store.set_level(tx, user_id, level)
        if before is None:
            raise not_found("user")
        previous = before.get("level", "retail")
        if previous != level:
            tx.emit(LevelChanged(user_id=user_id, level=level, previous_level=previous))
        return {**before, "level": level}

    after = await deps.uow.run(write)
    await _publish_claims(deps, user_id, after)
    return after


async def set_roles(deps: IdentityDeps, caller: Caller, user_id: str, roles: list[str]) -> dict[str, Any]:
    """Set the account's roles; `identity.roles-changed` when they changed. An admin cannot take
    their own admin role away."""
    if problem := roles_problem(roles):
        raise field_error("roles", problem)
    roles = sorted(set(roles))
    if user_id == caller.user_id and "admin" not in roles:
        # Keeps the platform from losing its last way into the admin API by a slip.
        raise Problem(409, "cannot-demote-self", "Conflict", "an admin cannot remove their own admin role")

    async def write(tx: Tx) -> dict[str, Any]:
        before = await deps.store.set_roles(tx, user_id, roles)
        if before is None:
            raise not_found("user")
        if sorted(before.get("roles", [])) != roles:
            tx.emit(RolesChanged(user_id=user_id, roles=roles))
        return {**before, "roles": roles}

    after = await deps.uow.run(write)
    await _publish_claims(deps, user_id, after)
    return after


async def _publish_claims(deps: IdentityDeps, user_id: str, account: dict[str, Any]) -> None:
    """Tell the gateway the account's current claims, after the commit: tokens issued before the
    change are forwarded with them from the next request on (read-your-writes for the buyer).
    Written even when nothing changed, so an admin's retry after a Redis error repairs it; if
    Redis is down the admin gets a 503 and retries (the database change is already durable and
    the retry is idempotent)."""
    try:
        await deps.denylist.publish_claims(
            user_id,
            version=int(account.get("version", 0)),
            level=account.get("level", "retail"),
            roles=list(account.get("roles", [])),
        )
    except RedisError as exc:
        raise Problem(
            503,
            "claims-not-published",
            "Service unavailable",
            "the change is saved but not yet in effect everywhere; send it again",
            headers={"Retry-After": "1"},
        ) from exc


async def bootstrap_admin(deps: IdentityDeps) -> str | None:
    """Create the admin of KAMENG_ADMIN_EMAIL / KAMENG_ADMIN_PASSWORD (roles admin and staff) if no
    account has that email; its id, None when nothing was created. An existing account is left as
    it is: its password may have been changed since."""
    settings = deps.settings
    if not settings.admin_email or settings.admin_password is None:
        return None
    email = normalize_email(settings.admin_email)
    if email is None:
        log.error("KAMENG_ADMIN_EMAIL %r is not an email address; no admin created", settings.admin_email)
        return None
    if await deps.store.email_registered(email):
        return None
    try:
        user_id = await create_user(
            deps, email=email, phone=None, password=settings.admin_password.get_secret_value(), roles=["admin", "staff"]
        )
    except DuplicateKeyError:
        return None  # another replica created it first
    log.info("created the bootstrap admin %s (%s)", email, user_id)
    return user_id
