"""The manual delivery queue (手动发货): paid orders of manual SKUs wait here for staff, who
complete them with the content to hand over (encrypted like card keys) or fail them (refund)."""

from __future__ import annotations

from typing import Any

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import DeliveryStatus, TaskStatus
from services.fulfilment.usecases import delivery
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderPaid
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx


async def open_task(tx: Tx, deps: FulfilmentDeps, paid: OrderPaid) -> None:
    await deps.store.add_task(
        tx,
        {
            "_id": paid.order_id,
            "status": TaskStatus.PENDING.value,
            "user_id": paid.user_id,
            "sku_id": paid.sku_id,
            "quantity": paid.quantity,
            "recipient": paid.recipient,
            "created_at": utcnow(),
            "urged": False,
        },
    )


async def cancel_task(tx: Tx, deps: FulfilmentDeps, task_id: str) -> bool:
    """The buyer cancelled before staff did anything; False when staff closed it first."""
    return await deps.store.close_task(tx, task_id, TaskStatus.CANCELLED, {}) is not None


async def list_tasks(deps: FulfilmentDeps, status: str, limit: int) -> list[dict[str, Any]]:
    """Urged first, then oldest first."""
    return await deps.store.list_tasks(status, limit)


async def complete_task(deps: FulfilmentDeps, staff_id: str, task_id: str, content: str) -> dict[str, Any]:
    sealed = deps.vault.seal_document(content)

    async def run(tx: Tx) -> dict[str, Any]:
        task = await _close_task(tx, deps, task_id, TaskStatus.COMPLETED, staff_id, {"content": sealed})
        await delivery.finish(tx, deps.store, task_id, succeeded=True, only_from=DeliveryStatus.PENDING)
        return task

    return await deps.uow.run(run)


async def fail_task(deps: FulfilmentDeps, staff_id: str, task_id: str, reason: str) -> dict[str, Any]:
    async def run(tx: Tx) -> dict[str, Any]:
        task = await _close_task(tx, deps, task_id, TaskStatus.FAILED, staff_id, {"reason": reason})
        await delivery.finish(
            tx, deps.store, task_id, succeeded=False, only_from=DeliveryStatus.PENDING, reason=f"staff: {reason}"
        )
        return task

    return await deps.uow.run(run)


async def _close_task(
    tx: Tx, deps: FulfilmentDeps, task_id: str, target: TaskStatus, staff_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Guarded: a task closes once; a second click (or a second staff member) gets 409."""
    task = await deps.store.close_task(
        tx, task_id, target, {"completed_by": staff_id, "completed_at": utcnow(), **fields}
    )
    if task is None:
        if not await deps.store.task_exists(task_id, tx=tx):
            raise not_found("manual task")
        raise Problem(409, "task-closed", "Task already closed", "this task was completed or failed already")
    return task
