"""Admin management of accounts (`/api/v1/admin/users/...`): member level and roles. Each change
is an event so catalog and order can price by level and services can react to roles."""

from __future__ import annotations

from typing import Any

from litestar import get, put
from litestar.params import JSONBody

from services.identity.domain import is_level, roles_problem
from services.identity.kit import IdentityController, Kit, field_error
from services.identity.store import USERS
from services.identity.views import LevelRequest, RolesRequest, UserAdminView
from shared.auth import LEVELS, Caller, require_roles
from shared.contracts.identity import LevelChanged, RolesChanged
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx


def admin_view(user: dict[str, Any]) -> UserAdminView:
    return UserAdminView(
        user_id=user["_id"],
        email=user.get("email"),
        phone=user.get("phone"),
        level=user.get("level", "retail"),
        roles=list(user.get("roles", [])),
        real_name_verified=bool((user.get("real_name") or {}).get("verified_at")),
        totp_enabled=bool((user.get("totp") or {}).get("enabled")),
    )


_VIEW = {"email": 1, "phone": 1, "level": 1, "roles": 1, "real_name.verified_at": 1, "totp.enabled": 1}


class AdminUsersController(IdentityController):
    path = "/api/v1/admin/users"
    guards = [require_roles("admin")]

    @get("/{user_id:str}", summary="One account (admin)")
    async def show(self, kit: Kit, user_id: str) -> UserAdminView:
        user: dict[str, Any] | None = await kit.db[USERS].find_one({"_id": user_id}, _VIEW)
        if user is None:
            raise not_found("user")
        return admin_view(user)

    @put("/{user_id:str}/level", summary="Set the member level prices are chosen by")
    async def set_level(self, kit: Kit, user_id: str, data: JSONBody[LevelRequest]) -> UserAdminView:
        if not is_level(data.level):
            raise field_error("level", f"must be one of {', '.join(LEVELS)}")

        async def write(tx: Tx) -> dict[str, Any]:
            before: dict[str, Any] | None = await tx.db[USERS].find_one_and_update(
                {"_id": user_id},
                {"$set": {"level": data.level}, "$inc": {"version": 1}},
                projection=_VIEW,
                session=tx.session,
            )
            if before is None:
                raise not_found("user")
            previous = before.get("level", "retail")
            if previous != data.level:
                tx.emit(LevelChanged(user_id=user_id, level=data.level, previous_level=previous))
            return {**before, "level": data.level}

        return admin_view(await kit.runtime.uow.run(write))

    @put("/{user_id:str}/roles", summary="Set the account's roles (buyer, staff, admin)")
    async def set_roles(self, kit: Kit, caller: Caller, user_id: str, data: JSONBody[RolesRequest]) -> UserAdminView:
        if problem := roles_problem(data.roles):
            raise field_error("roles", problem)
        roles = sorted(set(data.roles))
        if user_id == caller.user_id and "admin" not in roles:
            # Keeps the platform from losing its last way into the admin API by a slip.
            raise Problem(409, "cannot-demote-self", "Conflict", "an admin cannot remove their own admin role")

        async def write(tx: Tx) -> dict[str, Any]:
            before: dict[str, Any] | None = await tx.db[USERS].find_one_and_update(
                {"_id": user_id},
                {"$set": {"roles": roles}, "$inc": {"version": 1}},
                projection=_VIEW,
                session=tx.session,
            )
            if before is None:
                raise not_found("user")
            if sorted(before.get("roles", [])) != roles:
                tx.emit(RolesChanged(user_id=user_id, roles=roles))
            return {**before, "roles": roles}

        return admin_view(await kit.runtime.uow.run(write))
