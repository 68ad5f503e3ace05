"""批量下单: upload a CSV or XLSX sheet (sku_id, quantity, one column per recipient field), see
what became of every row, save the sheet as a template and run templates again."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.render import page
from services.web.visitor import Visitor

SAMPLE = "sku_id,quantity,mobile\nSKU_ID_HERE,1,13800138000\n"


class BatchPages(Controller):
    path = "/batch"

    async def _templates(self, visitor: Visitor) -> list[dict[str, Any]]:
        answer = await visitor.api("GET", "orders/templates")
        return list(answer if isinstance(answer, list) else answer.get("items", []))

    @get("/")
    async def batch(self, visitor: Visitor) -> Template:
        visitor.user()
        return page(visitor, "pages/batch.html", form=Form(), report=None, templates=await self._templates(visitor))

    @get("/sample.csv")
    async def sample(self) -> Response[str]:
        return Response(
            SAMPLE,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="kameng-batch.csv"'},
        )

    @post("/")
    async def upload(self, visitor: Visitor, request: Request[Any, Any, Any]) -> Template:
        visitor.user()
        posted = await request.form()
        upload = posted.get("file")
        form = Form(values={"save_as_template": str(posted.get("save_as_template", ""))[:100]})
        report = None
        if not isinstance(upload, UploadFile) or not upload.filename:
            form.add("file", visitor.t("batch.file_needed"))
        else:
            data = {"save_as_template": form.values["save_as_template"]} if form.values["save_as_template"] else None
            try:
                report = await visitor.api(
                    "POST",
                    "orders/batch",
                    files={
                        "file": (
                            upload.filename,
                            await upload.read(),
                            upload.content_type or "application/octet-stream",
                        )
                    },
                    data=data,
                    headers={"Idempotency-Key": "web-" + secrets.token_urlsafe(16)},
                )
            except ApiProblem as problem:
                form.fail(problem, known={"file", "save_as_template"})
        return page(
            visitor,
            "pages/batch.html",
            status=form.status,
            form=form,
            report=report,
            templates=await self._templates(visitor),
        )

    @post("/templates/{template_id:str}/run")
    async def run(self, visitor: Visitor, template_id: str) -> Template:
        visitor.user()
        form = Form()
        report = None
        try:
            report = await visitor.api(
                "POST",
                f"orders/templates/{template_id}/run",
                headers={"Idempotency-Key": "web-" + secrets.token_urlsafe(16)},
            )
        except ApiProblem as problem:
            form.fail(problem, known=set())
        return page(
            visitor,
            "pages/batch.html",
            status=form.status,
            form=form,
            report=report,
            templates=await self._templates(visitor),
        )

    @post("/templates/{template_id:str}/delete")
    async def delete(self, visitor: Visitor, template_id: str) -> Redirect:
        visitor.user()
        await visitor.api("DELETE", f"orders/templates/{template_id}")
        return Redirect("/batch", status_code=303)
