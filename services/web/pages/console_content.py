"""Console content: platform announcements (平台公告: pinned, published) and help-center
articles (帮助中心: category, position, published): list every one (published or not), create,
edit in place, delete. The API has no admin read of a single item, so editing happens on the
list, one `<details>` per item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import checked, console, done, idempotency, int_field, page_no
from services.web.visitor import Visitor


@dataclass(frozen=True)
class Kind:
    name: str  # the URL under /admin/ and the word prefix
    api: str  # the admin API collection
    id_field: str
    flags: tuple[str, ...]  # checkboxes
    texts: tuple[str, ...]  # short text fields beside title and body


ANNOUNCEMENTS = Kind("announcements", "admin/announcements", "announcement_id", ("pinned", "published"), ())
HELP = Kind("help", "admin/help/articles", "article_id", ("published",), ("category", "position"))


def _form(kind: Kind, visitor: Visitor, data: FormData) -> tuple[Form, dict[str, Any]]:
    values: dict[str, Any] = {"title": text(data, "title", 200), "body": text(data, "body", 50_000)}
    for name in kind.texts:
        values[name] = text(data, name, 60)
    for flag in kind.flags:
        values[flag] = checked(data, flag)
    form = Form(values=values)
    body = {k: v for k, v in values.items() if k != "position"}
    if "position" in kind.texts:
        position = int_field(form, "position", visitor.t("console.number_invalid"), low=0)
        body["position"] = position or 0
    if "category" in kind.texts and not values["category"]:
        body.pop("category")
    return form, body


async def _list(
    kind: Kind,
    visitor: Visitor,
    page: int,
    *,
    form: Form | None = None,
    row: tuple[str, Form] | None = None,
    code: int = 200,
) -> Template:
    answer = await visitor.api("GET", kind.api, params={"page": page, "page_size": 20})
    defaults: dict[str, Any] = {"published": True}
    if "category" in kind.texts:
        defaults.update(category="general", position="0")
    return console(
        visitor,
        "content.html",
        "content",
        status=code,
        kind=kind,
        items=answer,
        edits={item[kind.id_field]: Form(values=dict(item)) for item in answer.get("items", [])},
        form=form or Form(values=defaults),
        row=row,
    )


async def _create(kind: Kind, visitor: Visitor, data: FormData) -> Template | Redirect:
    visitor.staff()
    form, body = _form(kind, visitor, data)
    if form.ok:
        try:
            await visitor.api("POST", kind.api, json=body, headers=idempotency())
        except ApiProblem as problem:
            form.fail(problem)
        else:
            return await done(visitor, f"/admin/{kind.name}", visitor.t("console.saved"))
    return await _list(kind, visitor, 1, form=form, code=form.status)


async def _update(kind: Kind, visitor: Visitor, item_id: str, data: FormData) -> Template | Redirect:
    visitor.staff()
    form, body = _form(kind, visitor, data)
    if form.ok:
        try:
            await visitor.api("PATCH", f"{kind.api}/{item_id}", json=body)
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
        else:
            return await done(visitor, f"/admin/{kind.name}", visitor.t("console.saved"))
    return await _list(kind, visitor, 1, row=(item_id, form), code=form.status)


async def _delete(kind: Kind, visitor: Visitor, item_id: str) -> Redirect:
    visitor.staff()
    await visitor.api("DELETE", f"{kind.api}/{item_id}")
    return await done(visitor, f"/admin/{kind.name}", visitor.t("console.deleted"))


class ConsoleContent(Controller):
    path = "/admin"

    @get("/announcements")
    async def announcements(self, visitor: Visitor, page: int = 1) -> Template:
        visitor.staff()
        return await _list(ANNOUNCEMENTS, visitor, page_no(page))

    @post("/announcements")
    async def create_announcement(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        return await _create(ANNOUNCEMENTS, visitor, data)

    @post("/announcements/{item_id:str}")
    async def update_announcement(self, visitor: Visitor, item_id: str, data: FormData) -> Template | Redirect:
        return await _update(ANNOUNCEMENTS, visitor, item_id, data)

    @post("/announcements/{item_id:str}/delete")
    async def delete_announcement(self, visitor: Visitor, item_id: str, data: FormData) -> Redirect:
        return await _delete(ANNOUNCEMENTS, visitor, item_id)

    @get("/help")
    async def articles(self, visitor: Visitor, page: int = 1) -> Template:
        visitor.staff()
        return await _list(HELP, visitor, page_no(page))

    @post("/help")
    async def create_article(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        return await _create(HELP, visitor, data)

    @post("/help/{item_id:str}")
    async def update_article(self, visitor: Visitor, item_id: str, data: FormData) -> Template | Redirect:
        return await _update(HELP, visitor, item_id, data)

    @post("/help/{item_id:str}/delete")
    async def delete_article(self, visitor: Visitor, item_id: str, data: FormData) -> Redirect:
        return await _delete(HELP, visitor, item_id)
