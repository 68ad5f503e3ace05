"""Agent applications (`/api/v1/agent/application`, staff: `/api/v1/admin/agent-applications`)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.usecases import agents
from shared.auth import STAFF, Caller
from shared.paging import Page, Paging


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class RejectIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class ApplicationView(msgspec.Struct, kw_only=True):
    application_id: str
    user_id: str
    note: str
    status: str
    created_at: str
    decided_at: str | None = None
    reason: str | None = None


def view(doc: dict[str, Any]) -> ApplicationView:
    decided = doc.get("decided_at")
    return ApplicationView(
        application_id=doc["_id"],
        user_id=doc["user_id"],
        note=doc.get("note", ""),
        status=doc["status"],
        created_at=doc["created_at"].isoformat(),
        decided_at=decided.isoformat() if decided else None,
        reason=doc.get("reason"),
    )


class AgentApplicationController(Controller):
    path = "/api/v1/agent/application"
    tags = ["agents"]

    @post("/", status_code=202, summary="Apply to become an agent (代理); staff decide")
    async def apply(self, deps: IdentityDeps, caller: Caller, data: JSONBody[ApplicationIn]) -> ApplicationView:
        return view(await agents.apply(deps, caller, data.note))


class AdminAgentApplicationsController(Controller):
    path = "/api/v1/admin/agent-applications"
    tags = ["agents"]
    guards = [STAFF]

    @get("/", summary="Agent applications, newest first (?status=pending|approved|rejected)")
    async def list_applications(
        self, deps: IdentityDeps, paging: Paging, status: str | None = None
    ) -> Page[ApplicationView]:
        docs, total = await agents.applications(deps, status, paging)
        return paging.of([view(d) for d in docs], total)

    @post("/{application_id:str}/approve", status_code=200, summary="Approve: the agent role and level, at once")
    async def approve(self, deps: IdentityDeps, caller: Caller, application_id: str) -> ApplicationView:
        return view(await agents.approve(deps, caller, application_id))

    @post("/{application_id:str}/reject", status_code=200, summary="Reject an application")
    async def reject(
        self, deps: IdentityDeps, caller: Caller, application_id: str, data: JSONBody[RejectIn | None] = None
    ) -> ApplicationView:
        return view(await agents.reject(deps, caller, application_id, data.reason if data else ""))
