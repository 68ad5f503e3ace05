"""Console after-sales (售后): the staff queue (urged, then overdue, then by due time), one
ticket with its evidence and thread, replying, and resolving it with a reissue, a refund or a
rejection. The ticket is the buyer's: staff read it through the same API path, which lets
staff in."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, evidence_file, text
from services.web.pages.console_common import console, done, int_field, page_no
from services.web.visitor import Visitor

VIEWS = {"open": "open,answered", "resolved": "resolved"}
ACTIONS = ("refund", "reissue", "reject")


class ConsoleTickets(Controller):
    path = "/admin/tickets"

    @get("/")
    async def queue(self, visitor: Visitor, view: str = "open", page: int = 1) -> Template:
        visitor.staff()
        view = view if view in VIEWS else "open"
        answer = await visitor.api(
            "GET", "admin/tickets", params={"status": VIEWS[view], "page": page_no(page), "page_size": 20}
        )
        return console(visitor, "tickets.html", "tickets", tickets=answer, view=view, views=VIEWS)

    @get("/{ticket_id:str}")
    async def ticket(self, visitor: Visitor, ticket_id: str) -> Template:
        visitor.staff()
        return await self._ticket(visitor, ticket_id)

    async def _ticket(
        self,
        visitor: Visitor,
        ticket_id: str,
        *,
        reply: Form | None = None,
        resolve: Form | None = None,
        status: int = 200,
    ) -> Template:
        ticket = await visitor.api("GET", f"tickets/{ticket_id}")
        return console(
            visitor,
            "ticket.html",
            "tickets",
            status=status,
            ticket=ticket,
            reply=reply or Form(),
            resolve=resolve or Form(values={"action": "refund"}),
            actions=ACTIONS,
        )

    @post("/{ticket_id:str}/reply")
    async def reply(self, visitor: Visitor, ticket_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"body": text(data, "body", 5000)})
        if not form.values["body"]:
            form.add("body", visitor.t("common.required"))
        if form.ok:
            try:
                await visitor.api("POST", f"tickets/{ticket_id}/messages", json=form.values)
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem)
            else:
                return await done(visitor, f"/admin/tickets/{ticket_id}", visitor.t("console.tickets.replied"))
        return await self._ticket(visitor, ticket_id, reply=form, status=form.status)

    @post("/{ticket_id:str}/resolve")
    async def resolve(self, visitor: Visitor, ticket_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(
            values={
                "action": text(data, "action", 20),
                "note": text(data, "note", 5000),
                "quantity": text(data, "quantity", 10),
            }
        )
        if form.values["action"] not in ACTIONS:
            form.add("action", visitor.t("console.tickets.action_invalid"))
        quantity = int_field(form, "quantity", visitor.t("console.number_invalid"), low=1)
        if form.ok:
            body: dict[str, Any] = {"action": form.values["action"], "note": form.values["note"]}
            if quantity is not None and form.values["action"] == "reissue":
                body["quantity"] = quantity
            try:
                await visitor.api("POST", f"admin/tickets/{ticket_id}/resolve", json=body)
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem)
            else:
                message = visitor.t("console.tickets.resolved", action=visitor.t("tickets.action." + body["action"]))
                return await done(visitor, f"/admin/tickets/{ticket_id}", message)
        return await self._ticket(visitor, ticket_id, resolve=form, status=form.status)

    @get("/{ticket_id:str}/evidence/{file_id:str}")
    async def evidence(self, visitor: Visitor, ticket_id: str, file_id: str) -> Response[bytes]:
        """The buyer's evidence file, passed through as it is, never run as a page here."""
        session = visitor.staff()
        return await evidence_file(visitor, session, ticket_id, file_id)
