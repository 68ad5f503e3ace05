"""Console card keys of one SKU: import by paste or file (progress bar in console.js, the
API's line-exact report `{accepted, duplicates, invalid: [{line, reason}]}`), the stock view
(`/admin/skus/{id}/stock`), the key list (never codes) and disabling keys (one, or by codes).

The codes pass through this process only on their way to the API: never logged, never kept."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import console, done, page_no
from services.web.visitor import Visitor

KEY_STATUSES = ("available", "sold", "disabled")


class ConsoleKeys(Controller):
    path = "/admin/skus/{sku_id:str}"

    @get("/keys")
    async def keys(self, visitor: Visitor, sku_id: str, status: str = "", page: int = 1) -> Template:
        visitor.staff()
        return await self._page(visitor, sku_id, status=status, page=page_no(page))

    async def _page(
        self,
        visitor: Visitor,
        sku_id: str,
        *,
        status: str = "",
        page: int = 1,
        form: Form | None = None,
        report: dict[str, Any] | None = None,
        disable: Form | None = None,
        disabled: dict[str, Any] | None = None,
        job: dict[str, Any] | None = None,
        code: int = 200,
    ) -> Template:
        status = status if status in KEY_STATUSES else ""
        sku, stock, keys = await asyncio.gather(
            visitor.api("GET", f"admin/skus/{sku_id}"),
            visitor.api("GET", f"admin/skus/{sku_id}/stock"),
            visitor.api(
                "GET",
                f"admin/skus/{sku_id}/card-keys",
                params={"status": status or None, "page": page, "page_size": 50},
            ),
        )
        return console(
            visitor,
            "keys.html",
            "catalog",
            status=code,
            sku=sku,
            stock=stock,
            keys=keys,
            key_status=status,
            statuses=KEY_STATUSES,
            form=form or Form(),
            report=report,
            disable=disable or Form(),
            disabled=disabled,
            job=job,
        )

    @get("/imports/{job_id:str}")
    async def import_job(self, visitor: Visitor, sku_id: str, job_id: str) -> Template:
        """A large import's progress (the page asks again every second while it runs, htmx)."""
        visitor.staff()
        job = await visitor.api("GET", f"admin/card-key-imports/{job_id}")
        if job.get("sku_id") != sku_id:
            job = None  # another SKU's job id in this SKU's address: show nothing of it
        return await self._page(visitor, sku_id, job=job)

    @post("/keys")
    async def import_keys(self, visitor: Visitor, request: Request[Any, Any, Any], sku_id: str) -> Template:
        visitor.staff()
        posted = await request.form()
        pasted = str(posted.get("keys") or "")
        upload = posted.get("file")
        form = Form(values={"keys": ""})
        kwargs: dict[str, Any]
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read()
            kwargs = {"files": {"file": (upload.filename, content, upload.content_type or "text/plain")}}
        elif pasted.strip():
            kwargs = {"content": pasted.encode(), "headers": {"content-type": "text/plain; charset=utf-8"}}
        else:
            form.add("keys", visitor.t("console.keys.nothing"))
            return await self._page(visitor, sku_id, form=form, code=form.status)
        # A SKU created a moment ago: the vault itself waits for catalog's event (Decision 19,
        # its seam in fulfilment), so one call is enough here.
        report = None
        try:
            report = await visitor.api("POST", f"admin/skus/{sku_id}/card-keys", **kwargs)
        except ApiProblem as problem:
            form.fail(problem, rename={"body": "keys", "file": "keys"}, known={"keys"})
        if report is not None and "job_id" in report:
            # A large file became an import job (202): show its progress, not a report yet.
            job = await visitor.api("GET", f"admin/card-key-imports/{report['job_id']}")
            return await self._page(visitor, sku_id, job=job)
        return await self._page(visitor, sku_id, form=form, report=report, code=form.status)

    @post("/keys/{key_id:str}/disable")
    async def disable_one(self, visitor: Visitor, sku_id: str, key_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        back = f"/admin/skus/{sku_id}/keys"
        try:
            await visitor.api("POST", f"admin/skus/{sku_id}/card-keys/{key_id}/disable")
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form = Form()
            form.fail(problem, known=set())
            return await self._page(visitor, sku_id, disable=form, code=form.status)
        return await done(visitor, back, visitor.t("console.keys.disabled_one"))

    @post("/keys/disable")
    async def disable_codes(self, visitor: Visitor, sku_id: str, data: FormData) -> Template:
        visitor.staff()
        raw = text(data, "codes", 2_000_000)
        codes = [line.strip() for line in raw.splitlines() if line.strip()]
        form = Form(values={"codes": ""})
        outcome = None
        if not codes:
            form.add("codes", visitor.t("console.keys.nothing"))
        else:
            try:
                outcome = await visitor.api("POST", f"admin/skus/{sku_id}/card-keys/disable", json={"codes": codes})
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem, known={"codes"})
        return await self._page(visitor, sku_id, disable=form, disabled=outcome, code=form.status)
