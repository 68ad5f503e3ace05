"""Admin management of accounts (`/api/v1/admin/users/...`): member level and roles."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import LevelRequest, RolesRequest, UserAdminView, admin_view
from services.identity.usecases import admin
from shared.auth import ADMIN, Caller


class AdminUsersController(Controller):
    path = "/api/v1/admin/users"
    tags = ["identity"]
    guards = [ADMIN]

    @get("/{user_id:str}", summary="One account (admin)")
    async def show(self, deps: IdentityDeps, user_id: str) -> UserAdminView:
        return admin_view(await admin.user(deps, user_id))

    @put("/{user_id:str}/level", summary="Set the member level prices are chosen by")
    async def set_level(self, deps: IdentityDeps, user_id: str, data: JSONBody[LevelRequest]) -> UserAdminView:
        return admin_view(await admin.set_level(deps, user_id, data.level))

    @put("/{user_id:str}/roles", summary="Set the account's roles (buyer, staff, admin)")
    async def set_roles(
        self, deps: IdentityDeps, caller: Caller, user_id: str, data: JSONBody[RolesRequest]
    ) -> UserAdminView:
        return admin_view(await admin.set_roles(deps, caller, user_id, data.roles))
