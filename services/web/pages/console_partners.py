"""Console partner webhooks: the delivery list by status (default: the dead letters, deliveries
that used up their attempts), each with its attempt log and payload, and replay. The API offers
staff no list of the partners' webhooks themselves (only each partner's own)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData
from services.web.pages.console_common import console, done, page_no
from services.web.visitor import Visitor

DELIVERY_STATUSES = ("dead", "pending", "delivered", "cancelled")


class ConsolePartners(Controller):
    path = "/admin/webhooks"

    @get("/")
    async def deliveries(self, visitor: Visitor, status: str = "dead", page: int = 1) -> Template:
        visitor.staff()
        return await self._page(visitor, status=status, page=page_no(page))

    async def _page(
        self,
        visitor: Visitor,
        *,
        status: str = "dead",
        page: int = 1,
        row: tuple[str, Form] | None = None,
        code: int = 200,
    ) -> Template:
        status = status if status in DELIVERY_STATUSES else "dead"
        answer = await visitor.api(
            "GET", "admin/webhook-deliveries", params={"status": status, "page": page, "page_size": 20}
        )
        return console(
            visitor,
            "webhooks.html",
            "partners",
            status=code,
            deliveries=answer,
            delivery_status=status,
            statuses=DELIVERY_STATUSES,
            row=row,
        )

    @post("/deliveries/{delivery_id:str}/replay")
    async def replay(self, visitor: Visitor, delivery_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        try:
            await visitor.api("POST", f"admin/webhook-deliveries/{delivery_id}/replay")
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form = Form()
            form.fail(problem, known=set())
            return await self._page(visitor, row=(delivery_id, form), code=form.status)
        return await done(visitor, "/admin/webhooks", visitor.t("console.webhooks.replayed"))
