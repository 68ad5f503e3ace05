"""Console users: look an account up by id (the API has no user list or search), set its
member level (the prices it sees) and its roles. Admin only in the API."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import console, done
from services.web.visitor import Visitor

LEVELS = ("retail", "vip", "agent", "wholesale")
ROLES = ("buyer", "staff", "admin")


def _clean_id(raw: str) -> str:
    return "".join(c for c in raw.strip() if c.isalnum() or c in "-_")[:64]


class ConsoleUsers(Controller):
    path = "/admin/users"

    @get("/")
    async def users(self, visitor: Visitor, user_id: str = "") -> Template:
        visitor.staff()
        return await self._page(visitor, _clean_id(user_id))

    async def _page(self, visitor: Visitor, user_id: str, *, form: Form | None = None, code: int = 200) -> Template:
        user: dict[str, Any] | None = None
        lookup = Form(values={"user_id": user_id})
        if user_id:
            try:
                user = await visitor.api("GET", f"admin/users/{user_id}")
            except ApiProblem as problem:
                if problem.status not in (403, 404):
                    raise
                lookup.add(
                    "user_id", visitor.t("console.users.not_found" if problem.status == 404 else "console.admin_only")
                )
                code = problem.status
        return console(
            visitor,
            "users.html",
            "users",
            status=code,
            user=user,
            lookup=lookup,
            form=form or Form(),
            levels=LEVELS,
            roles=ROLES,
        )

    @post("/{user_id:str}/level")
    async def level(self, visitor: Visitor, user_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"level": text(data, "level", 20)})
        try:
            await visitor.api("PUT", f"admin/users/{user_id}/level", json=form.values)
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
            return await self._page(visitor, user_id, form=form, code=form.status)
        return await done(visitor, f"/admin/users?user_id={user_id}", visitor.t("console.saved"))

    @post("/{user_id:str}/roles")
    async def roles(self, visitor: Visitor, user_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        chosen = data.get("roles", [])
        roles = [r for r in (chosen if isinstance(chosen, list) else [chosen]) if r in ROLES]
        form = Form(values={"roles": roles})
        try:
            await visitor.api("PUT", f"admin/users/{user_id}/roles", json={"roles": roles})
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
            return await self._page(visitor, user_id, form=form, code=form.status)
        return await done(visitor, f"/admin/users?user_id={user_id}", visitor.t("console.users.roles_saved"))
