"""售后: open a ticket on an own order with evidence files (screenshots), read the thread, reply.
Evidence is downloaded through the web (the API checks it is the caller's ticket)."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, evidence_file, text
from services.web.render import page
from services.web.visitor import Visitor

KINDS = ("invalid_key", "not_received", "wrong_amount", "other")


class AfterSalesPages(Controller):
    path = "/"

    @get("/orders/{order_id:str}/after-sales")
    async def form(self, visitor: Visitor, order_id: str) -> Template:
        visitor.user()
        order = await visitor.api("GET", f"orders/{order_id}")
        return page(
            visitor, "pages/ticket_new.html", order=order, kinds=KINDS, form=Form(values={"kind": "invalid_key"})
        )

    @post("/orders/{order_id:str}/after-sales")
    async def open_ticket(
        self, visitor: Visitor, request: Request[Any, Any, Any], order_id: str
    ) -> Template | Redirect:
        visitor.user()
        posted = await request.form()
        form = Form(
            values={"kind": str(posted.get("kind", ""))[:40], "description": str(posted.get("description", ""))[:5000]}
        )
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        for key, value in posted.multi_items():
            if key == "evidence" and isinstance(value, UploadFile) and value.filename:
                files.append(
                    ("evidence", (value.filename, await value.read(), value.content_type or "application/octet-stream"))
                )
        if form.values["kind"] not in KINDS:
            form.add("kind", visitor.t("tickets.kind_invalid"))
        if not form.values["description"].strip():
            form.add("description", visitor.t("common.required"))
        if form.ok:
            fields = {"order_id": order_id, **form.values}
            try:
                created = await visitor.api(
                    "POST",
                    "tickets",
                    data=fields,
                    files=files or None,
                    headers={"Idempotency-Key": "web-" + secrets.token_urlsafe(16)},
                )
            except ApiProblem as problem:
                form.fail(problem, known={"kind", "description", "evidence"})
                for name, message in list(form.errors.items()):
                    if name.startswith("evidence["):
                        form.errors.setdefault("evidence", message)
            else:
                return Redirect(f"/tickets/{created['ticket_id']}", status_code=303)
        order = await visitor.api("GET", f"orders/{order_id}")
        return page(visitor, "pages/ticket_new.html", status=form.status, order=order, kinds=KINDS, form=form)

    @get("/tickets/{ticket_id:str}")
    async def ticket(self, visitor: Visitor, ticket_id: str) -> Template:
        visitor.user()
        ticket = await visitor.api("GET", f"tickets/{ticket_id}")
        return page(visitor, "pages/ticket.html", ticket=ticket, form=Form())

    @post("/tickets/{ticket_id:str}/messages")
    async def reply(self, visitor: Visitor, ticket_id: str, data: FormData) -> Template | Redirect:
        visitor.user()
        form = Form(values={"body": text(data, "body", 5000)})
        if not form.values["body"]:
            form.add("body", visitor.t("common.required"))
        if form.ok:
            try:
                await visitor.api("POST", f"tickets/{ticket_id}/messages", json=form.values)
            except ApiProblem as problem:
                form.fail(problem)
            else:
                return Redirect(f"/tickets/{ticket_id}", status_code=303)
        ticket = await visitor.api("GET", f"tickets/{ticket_id}")
        return page(visitor, "pages/ticket.html", status=form.status, ticket=ticket, form=form)

    @get("/tickets/{ticket_id:str}/evidence/{file_id:str}")
    async def evidence(self, visitor: Visitor, ticket_id: str, file_id: str) -> Response[bytes]:
        session = visitor.user()
        return await evidence_file(visitor, session, ticket_id, file_id)
