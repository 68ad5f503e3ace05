"""The manual delivery queue (手动发货): paid orders of manual SKUs wait here for staff, who
complete them with the content to hand over (encrypted like card keys) or fail them (refund)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter

from services.fulfilment.deliveries import MANUAL_TASKS, finish
from services.fulfilment.deps import FulfilmentDeps
from shared.auth import Caller, require_roles
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderPaid
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

MANUAL_ESTIMATE_MINUTES = 180  # what buyers are told: manual orders take 1-5 hours


class TaskView(msgspec.Struct, kw_only=True):
    task_id: str
    order_id: str
    status: str
    sku_id: str
    quantity: int
    recipient: dict[str, str]
    created_at: datetime
    urged: bool = False
    completed_by: str | None = None
    completed_at: datetime | None = None
    reason: str | None = None


class CompleteTask(msgspec.Struct, kw_only=True):
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=10000)]


class FailTask(msgspec.Struct, kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


async def open_task(tx: Tx, paid: OrderPaid) -> None:
    await tx.db[MANUAL_TASKS].insert_one(
        {
            "_id": paid.order_id,
            "status": "pending",
            "user_id": paid.user_id,
            "sku_id": paid.sku_id,
            "quantity": paid.quantity,
            "recipient": paid.recipient,
            "created_at": utcnow(),
            "urged": False,
        },
        session=tx.session,
    )


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
    guards = [require_roles("staff", "admin")]

    @get("/", summary="The manual delivery queue: urged first, then oldest first")
    async def list_tasks(
        self, runtime: Runtime, status: str = "pending", limit: Annotated[int, Parameter(ge=1, le=200)] = 50
    ) -> list[TaskView]:
        docs = (
            await runtime.mongo.db[MANUAL_TASKS]
            .find({"status": status})
            .sort([("urged", -1), ("created_at", 1)])
            .limit(limit)
            .to_list(limit)
        )
        return [task_view(d) for d in docs]

    @post("/{task_id:str}/complete", status_code=200, summary="Deliver: hand over the content")
    async def complete(self, runtime: Runtime, caller: Caller, task_id: str, data: JSONBody[CompleteTask]) -> TaskView:
        deps = runtime.get(FulfilmentDeps)
        sealed = deps.seal(data.content)

        async def run(tx: Tx) -> dict[str, Any]:
            task = await _close_task(tx, task_id, "completed", caller, {"content": sealed})
            await finish(tx, task_id, succeeded=True, expect=("pending",))
            return task

        return task_view(await runtime.uow.run(run))

    @post("/{task_id:str}/fail", status_code=200, summary="Give up: the order is refunded")
    async def fail(self, runtime: Runtime, caller: Caller, task_id: str, data: JSONBody[FailTask]) -> TaskView:
        async def run(tx: Tx) -> dict[str, Any]:
            task = await _close_task(tx, task_id, "failed", caller, {"reason": data.reason})
            await finish(tx, task_id, succeeded=False, expect=("pending",), reason=f"staff: {data.reason}")
            return task

        return task_view(await runtime.uow.run(run))


async def _close_task(tx: Tx, task_id: str, status: str, caller: Caller, fields: dict[str, Any]) -> dict[str, Any]:
    """Guarded: a task closes once; a second click (or a second staff member) gets 409."""
    task: dict[str, Any] | None = await tx.db[MANUAL_TASKS].find_one_and_update(
        {"_id": task_id, "status": "pending"},
        {"$set": {"status": status, "completed_by": caller.user_id, "completed_at": utcnow(), **fields}},
        session=tx.session,
        return_document=True,
    )
    if task is None:
        if await tx.db[MANUAL_TASKS].find_one({"_id": task_id}, {"_id": 1}, session=tx.session) is None:
            raise not_found("manual task")
        raise Problem(409, "task-closed", "Task already closed", "this task was completed or failed already")
    return task
