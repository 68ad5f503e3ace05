"""Sign up, sign in, sign out."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, local_target, text
from services.web.render import page
from services.web.session import SignInRequired
from services.web.visitor import Visitor


def _session_cookie(visitor: Visitor, sid: str) -> Cookie:
    settings = visitor.deps.settings
    return Cookie(
        key=settings.session_cookie,
        value=sid,
        path="/",
        max_age=settings.session_ttl_seconds,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )


class AuthPages(Controller):
    path = "/"

    @get("/login")
    async def login_form(self, visitor: Visitor, next: str | None = None) -> Template | Redirect:
        if visitor.signed_in:
            return Redirect(local_target(next), status_code=303)
        return page(visitor, "pages/login.html", form=Form(values={"next": local_target(next)}))

    @post("/login")
    async def login(self, visitor: Visitor, data: FormData) -> Template | Response[Any]:
        form = Form(values={"login": text(data, "login", 200), "next": local_target(text(data, "next"))})
        password = str(data.get("password", ""))
        if not form.values["login"]:
            form.add("login", visitor.t("common.required"))
        if not password:
            form.add("password", visitor.t("common.required"))
        if form.ok:
            try:
                tokens = await visitor.deps.api.login(
                    form.values["login"], password, text(data, "totp_code", 12) or None
                )
            except ApiProblem as problem:
                if problem.slug in ("totp-required", "invalid-totp"):
                    form.values["totp"] = True
                    form.add(
                        "totp_code",
                        visitor.t("auth.totp_needed") if problem.slug == "totp-required" else problem.detail,
                    )
                elif problem.status == 401:
                    form.banner = visitor.t("auth.bad_credentials")
                    form.status = 401
                else:
                    form.fail(problem, known={"login", "password"})
            else:
                session = await visitor.deps.sessions.create(tokens)
                return Redirect(form.values["next"], status_code=303, cookies=[_session_cookie(visitor, session.sid)])
        return page(visitor, "pages/login.html", status=form.status, form=form)

    @get("/register")
    async def register_form(self, visitor: Visitor, next: str | None = None) -> Template:
        return page(visitor, "pages/register.html", form=Form(values={"next": local_target(next)}))

    @post("/register")
    async def register(self, visitor: Visitor, data: FormData) -> Template | Response[Any]:
        login = text(data, "login", 200)
        form = Form(values={"login": login, "next": local_target(text(data, "next"))})
        password = str(data.get("password", ""))
        if not login:
            form.add("login", visitor.t("common.required"))
        if not password:
            form.add("password", visitor.t("common.required"))
        if form.ok:
            body: dict[str, Any] = {"password": password, ("email" if "@" in login else "phone"): login}
            try:
                await visitor.deps.api.register(body, visitor.site_headers)
                tokens = await visitor.deps.api.login(login, password)
            except ApiProblem as problem:
                if problem.status == 409:
                    form.add("login", visitor.t("auth.taken"))
                    form.status = 409
                else:
                    form.fail(problem, rename={"email": "login", "phone": "login"}, known={"login", "password"})
            else:
                session = await visitor.deps.sessions.create(tokens)
                session.flash = visitor.t("auth.registered")
                await visitor.deps.sessions.save(session)
                return Redirect(form.values["next"], status_code=303, cookies=[_session_cookie(visitor, session.sid)])
        return page(visitor, "pages/register.html", status=form.status, form=form)

    @post("/logout")
    async def logout(self, visitor: Visitor) -> Response[Any]:
        session = visitor.session
        if session is not None:
            # Revokes the refresh family at identity and lists the access token at the gateway;
            # the session ends here even if that fails (its tokens then expire on their own).
            with contextlib.suppress(ApiProblem, SignInRequired):
                await visitor.deps.api.logout(await visitor.deps.sessions.token(session), session.refresh_token)
            await visitor.deps.sessions.delete(session.sid)
        gone = Cookie(
            key=visitor.deps.settings.session_cookie, value="", path="/", max_age=0, httponly=True, samesite="lax"
        )
        return Redirect("/", status_code=303, cookies=[gone])
