"""Console manual delivery queue (手动发货): paid orders of manual SKUs, urged first then the
oldest; staff complete one with the content to hand over or fail it with a reason (the order is
refunded). Below it, the open urges (催单) with "handled"."""

from __future__ import annotations

import asyncio

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import console, done
from services.web.visitor import Visitor

TASK_STATUSES = ("pending", "completed", "failed")
QUEUE_LIMIT = 100


class ConsoleQueue(Controller):
    path = "/admin/queue"

    @get("/")
    async def queue(self, visitor: Visitor, status: str = "pending") -> Template:
        visitor.staff()
        return await self._queue(visitor, status=status)

    async def _queue(
        self, visitor: Visitor, *, status: str = "pending", failed: tuple[str, Form] | None = None, code: int = 200
    ) -> Template:
        status = status if status in TASK_STATUSES else "pending"
        tasks, urges = await asyncio.gather(
            visitor.api("GET", "admin/manual-tasks", params={"status": status, "limit": QUEUE_LIMIT}),
            visitor.api("GET", "admin/urges"),
        )
        return console(
            visitor,
            "queue.html",
            "queue",
            status=code,
            tasks=tasks,
            task_status=status,
            statuses=TASK_STATUSES,
            urges=urges,
            failed=failed,
            limit=QUEUE_LIMIT,
        )

    @post("/{task_id:str}/complete")
    async def complete(self, visitor: Visitor, task_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        # The content is a secret for the buyer (like a card key): never echoed back on error.
        content = text(data, "content", 10_000)
        form = Form(values={"content": ""})
        if not content:
            form.add("content", visitor.t("common.required"))
            return await self._queue(visitor, failed=(task_id, form), code=form.status)
        try:
            await visitor.api("POST", f"admin/manual-tasks/{task_id}/complete", json={"content": content})
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
            return await self._queue(visitor, failed=(task_id, form), code=form.status)
        return await done(visitor, "/admin/queue", visitor.t("console.queue.completed"))

    @post("/{task_id:str}/fail")
    async def fail(self, visitor: Visitor, task_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"reason": text(data, "reason", 500)})
        if not form.values["reason"]:
            form.add("reason", visitor.t("common.required"))
            return await self._queue(visitor, failed=(task_id, form), code=form.status)
        try:
            await visitor.api("POST", f"admin/manual-tasks/{task_id}/fail", json=form.values)
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
            return await self._queue(visitor, failed=(task_id, form), code=form.status)
        return await done(visitor, "/admin/queue", visitor.t("console.queue.failed"))

    @post("/urges/{order_id:str}/handle")
    async def handle_urge(self, visitor: Visitor, order_id: str, data: FormData) -> Redirect:
        visitor.staff()
        await visitor.api("POST", f"admin/urges/{order_id}/handle")
        return await done(visitor, "/admin/queue#urges", visitor.t("console.queue.urge_handled"))
