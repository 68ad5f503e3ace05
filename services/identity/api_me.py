"""The signed-in user's own account (`/api/v1/me`) and real-name verification (实名认证)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import get, post
from litestar.params import JSONBody
from pymongo.errors import DuplicateKeyError

from services.identity.domain import (
    id_number_problem,
    mask_id_number,
    normalize_id_number,
    real_name_problem,
)
from services.identity.kit import IdentityController, Kit, account_owner_only
from services.identity.store import USERS, find_user
from services.identity.views import (
    Me,
    RealNameRequest,
    RealNameResult,
)
from shared.auth import Caller
from shared.contracts.identity import UserVerified
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx


def me_view(user: dict[str, Any]) -> Me:
    real_name = user.get("real_name") or {}
    return Me(
        user_id=user["_id"],
        email=user.get("email"),
        phone=user.get("phone"),
        level=user.get("level", "retail"),
        roles=list(user.get("roles", [])),
        real_name_verified=bool(real_name.get("verified_at")),
        totp_enabled=bool((user.get("totp") or {}).get("enabled")),
        id_number_masked=real_name.get("masked"),
    )


async def load_me(kit: Kit, caller: Caller) -> dict[str, Any]:
    user: dict[str, Any] | None = await find_user(kit.db, caller.user_id)
    if user is None:
        raise not_found("account")
    return user


class MeController(IdentityController):
    path = "/api/v1/me"

    @get("/", summary="The signed-in account")
    async def me(self, kit: Kit, caller: Caller) -> Me:
        return me_view(await load_me(kit, caller))

    @post("/real-name", status_code=200, summary="Real-name verification (实名认证): name + resident ID number")
    async def real_name(self, kit: Kit, caller: Caller, data: JSONBody[RealNameRequest]) -> RealNameResult:
        account_owner_only(caller)
        errors = []
        if problem := real_name_problem(data.name):
            errors.append({"field": "name", "message": problem})
        if problem := id_number_problem(data.id_number, today=datetime.now(UTC).date()):
            errors.append({"field": "id_number", "message": problem})
        if errors:
            raise validation_problem(errors)
        number = normalize_id_number(data.id_number)
        user_id = caller.user_id
        now = datetime.now(UTC)
        record = {
            "name": kit.box.seal(data.name.strip(), context=f"real-name:{user_id}"),
            "id_number": kit.box.seal(number, context=f"id-number:{user_id}"),
            "id_hash": kit.box.lookup_hash(number, purpose="id-number"),
            "masked": mask_id_number(number),
            "verified_at": now,
        }

        async def write(tx: Tx) -> int:
            result = await tx.db[USERS].update_one(
                {"_id": user_id, "real_name": {"$exists": False}}, {"$set": {"real_name": record}}, session=tx.session
            )
            if result.matched_count:
                tx.emit(UserVerified(user_id=user_id, verified_at=now))
            return int(result.matched_count)

        try:
            matched = await kit.runtime.uow.run(write)
        except DuplicateKeyError as exc:
            raise Problem(
                409, "id-number-taken", "Conflict", "this ID number already verified another account"
            ) from exc
        if not matched:
            await load_me(kit, caller)  # 404 when the account does not exist
            raise Problem(409, "already-verified", "Conflict", "this account is already verified")
        return RealNameResult(real_name_verified=True, id_number_masked=record["masked"])  # type: ignore[arg-type]
