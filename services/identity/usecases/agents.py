"""Agent applications (代理申请): a buyer applies; staff approve (the account gets the `agent`
role and level at once, from the agent's next request: Decision 19's claims) or reject.

Approving is one transaction (the application's guarded pending -> approved, and the account's
level and role in one write, with `identity.level-changed` / `identity.roles-changed`), then the
claims are published. Approving again answers the approved application and publishes the claims
again, so a retry after a Redis error repairs them; approving a rejected one is 409."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.identity.applications_store import ApplicationStore
from services.identity.deps import IdentityDeps
from services.identity.usecases.admin import _publish_claims
from shared.auth import Caller
from shared.contracts.envelope import new_id
from shared.contracts.identity import LevelChanged, RolesChanged
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx
from shared.paging import Paging

Doc = dict[str, Any]


def _store(deps: IdentityDeps) -> ApplicationStore:
    return ApplicationStore(deps.store.db)


async def apply(deps: IdentityDeps, caller: Caller, note: str) -> Doc:
    """The caller's pending application (a second request while one is pending answers it);
    409 for an agent already."""
    if caller.has_role("agent"):
        raise Problem(409, "already-agent", "Already an agent", "this account is an agent already")
    store = _store(deps)
    doc = {
        "_id": new_id(),
        "user_id": caller.user_id,
        "note": note.strip(),
        "status": "pending",
        "created_at": deps.clock(),
    }
    try:
        await store.add(doc)
    except DuplicateKeyError:
        pending = await store.pending_of(caller.user_id)
        if pending is None:  # decided between our insert and this read: apply again
            return await apply(deps, caller, note)
        return pending
    return doc


async def applications(deps: IdentityDeps, status: str | None, paging: Paging) -> tuple[list[Doc], int]:
    return await _store(deps).page(status, paging.skip, paging.limit)


async def approve(deps: IdentityDeps, staff: Caller, application_id: str) -> Doc:
    store = _store(deps)

    async def write(tx: Tx) -> tuple[Doc, Doc | None]:
        decided = await store.decide(
            tx, application_id, "approved", {"decided_at": deps.clock(), "decided_by": staff.user_id}
        )
        if decided is None:
            return await _already_decided(store, application_id, "approved"), None
        changed = await store.make_agent(tx, decided["user_id"], deps.clock())
        if changed is None:
            raise not_found("user")
        before, after = changed
        if before.get("level", "retail") != "agent":
            tx.emit(LevelChanged(user_id=after["_id"], level="agent", previous_level=before.get("level", "retail")))
        if "agent" not in before.get("roles", []):
            tx.emit(RolesChanged(user_id=after["_id"], roles=after["roles"]))
        return decided, after

    application, account = await deps.uow.run(write)
    account = account or await store.account(application["user_id"])
    if account is not None:
        await _publish_claims(deps, application["user_id"], account)
    return application


async def reject(deps: IdentityDeps, staff: Caller, application_id: str, reason: str) -> Doc:
    store = _store(deps)

    async def write(tx: Tx) -> Doc:
        fields = {"decided_at": deps.clock(), "decided_by": staff.user_id, "reason": reason.strip()}
        decided = await store.decide(tx, application_id, "rejected", fields)
        return decided or await _already_decided(store, application_id, "rejected")

    result: Doc = await deps.uow.run(write)
    return result


async def _already_decided(store: ApplicationStore, application_id: str, wanted: str) -> Doc:
    """The same decision again answers the application as it is; the other one is 409."""
    doc = await store.get(application_id)
    if doc is None:
        raise not_found("application")
    if doc["status"] != wanted:
        raise Problem(409, "application-decided", "Already decided", f"the application was {doc['status']} already")
    return doc
