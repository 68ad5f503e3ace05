"""The manual delivery queue for staff: `/api/v1/admin/manual-tasks`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.schemas import CompleteTask, FailTask, TaskView
from services.fulfilment.usecases import manual
from shared.auth import STAFF, Caller


def task_view(doc: dict[str, Any]) -> TaskView:
    return TaskView(
        task_id=doc["_id"],
        order_id=doc["_id"],
        status=doc["status"],
        sku_id=doc["sku_id"],
        quantity=doc["quantity"],
        recipient=doc["recipient"],
        created_at=doc["created_at"],
        urged=doc.get("urged", False),
        completed_by=doc.get("completed_by"),
        completed_at=doc.get("completed_at"),
        reason=doc.get("reason"),
    )


class ManualTaskController(Controller):
    path = "/api/v1/admin/manual-tasks"
    tags = ["manual delivery"]
    guards = [STAFF]

    @get("/", summary="The manual delivery queue: urged first, then oldest first")
    async def list_tasks(
        self, deps: FulfilmentDeps, status: str = "pending", limit: Annotated[int, Parameter(ge=1, le=200)] = 50
    ) -> list[TaskView]:
        return [task_view(d) for d in await manual.list_tasks(deps, status, limit)]

    @post("/{task_id:str}/complete", status_code=200, summary="Deliver: hand over the content")
    async def complete(
        self, deps: FulfilmentDeps, caller: Caller, task_id: str, data: JSONBody[CompleteTask]
    ) -> TaskView:
        return task_view(await manual.complete_task(deps, caller.user_id, task_id, data.content))

    @post("/{task_id:str}/fail", status_code=200, summary="Give up: the order is refunded")
    async def fail(self, deps: FulfilmentDeps, caller: Caller, task_id: str, data: JSONBody[FailTask]) -> TaskView:
        return task_view(await manual.fail_task(deps, caller.user_id, task_id, data.reason))
