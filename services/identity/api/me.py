"""The signed-in user's own account (`/api/v1/me`) and real-name verification (实名认证)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import Me, RealNameRequest, RealNameResult, me_view
from services.identity.usecases import me
from shared.auth import Caller


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["identity"]

    @get("/", summary="The signed-in account")
    async def me(self, deps: IdentityDeps, caller: Caller) -> Me:
        return me_view(await me.account(deps, caller.user_id))

    @post("/real-name", status_code=200, summary="Real-name verification (实名认证): name + resident ID number")
    async def real_name(self, deps: IdentityDeps, caller: Caller, data: JSONBody[RealNameRequest]) -> RealNameResult:
        masked = await me.verify_real_name(deps, caller, name=data.name, id_number=data.id_number)
        return RealNameResult(real_name_verified=True, id_number_masked=masked)
