"""The signed-in user's own account and real-name verification (实名认证).

The real-name record keeps the name and ID number sealed (AES-GCM), the masked number, and a
keyed hash of the number with a unique index: one ID number verifies one account, and it can be
looked up without being stored in the clear."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.identity.deps import IdentityDeps
from services.identity.domain import (
    account_owner_only,
    id_number_check,
    id_number_form_problem,
    mask_id_number,
    normalize_id_number,
    real_name_problem,
)
from shared.auth import Caller
from shared.contracts.identity import UserVerified
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx


async def account(deps: IdentityDeps, user_id: str) -> dict[str, Any]:
    """The account's view; 404 when it does not exist."""
    user = await deps.store.user_view(user_id)
    if user is None:
        raise not_found("account")
    return user


async def verify_real_name(deps: IdentityDeps, caller: Caller, *, name: str, id_number: str) -> str:
    """Verify the account with a name and a resident ID number; the masked number."""
    account_owner_only(caller)
    now = deps.clock()
    errors = []
    if problem := real_name_problem(name):
        errors.append({"field": "name", "message": problem})
    if problem := id_number_form_problem(id_number):
        errors.append({"field": "id_number", "message": problem})
    if errors:
        raise validation_problem(errors)
    if problem := id_number_check(id_number, today=now.date()):
        # Its own slug: the number has the shape the document states, and fails the arithmetic
        # no pattern can state (a real, past birth date; the GB 11643 check character).
        raise Problem(
            422,
            "id-number-check-failed",
            "ID number check failed",
            f"id_number {problem}",
            errors=[{"field": "id_number", "message": problem}],
        )
    number = normalize_id_number(id_number)
    user_id = caller.user_id
    masked = mask_id_number(number)
    record = {
        "name": deps.box.seal(name.strip(), context=f"real-name:{user_id}"),
        "id_number": deps.box.seal(number, context=f"id-number:{user_id}"),
        "id_hash": deps.box.lookup_hash(number, purpose="id-number"),
        "masked": masked,
        "verified_at": now,
    }

    async def write(tx: Tx) -> bool:
        verified = await deps.store.set_real_name(tx, user_id, record)
        if verified:
            person = deps.box.lookup_hash(number, purpose="person")
            tx.emit(UserVerified(user_id=user_id, verified_at=now, person=person))
        return verified

    try:
        verified = await deps.uow.run(write)
    except DuplicateKeyError as exc:
        raise Problem(409, "id-number-taken", "Conflict", "this ID number already verified another account") from exc
    if not verified:
        await account(deps, user_id)  # 404 when the account does not exist
        raise Problem(409, "already-verified", "Conflict", "this account is already verified")
    return masked
