"""Account and security: the profile, real-name verification (实名认证), two-factor (TOTP with a
QR code drawn by segno as SVG), binding an email or mobile number with a one-time code, partner
API keys (the secret shown once), and signing out everywhere."""

from __future__ import annotations

import contextlib
from typing import Any

import segno
from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from markupsafe import Markup

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.render import page
from services.web.session import SignInRequired
from services.web.visitor import Visitor

TOTP_SETUP_SECONDS = 10 * 60


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (segno writes only its own markup)."""
    return Markup(segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000", light="#fff"))  # noqa: S704


class AccountPages(Controller):
    path = "/account"

    async def _me(self, visitor: Visitor) -> dict[str, Any]:
        me: dict[str, Any] = await visitor.api("GET", "me")
        return me

    @get("/")
    async def account(self, visitor: Visitor) -> Template:
        visitor.user()
        subscriptions: list[dict[str, Any]] = []
        # 自动充值: shown when the order service answers; the account page never depends on it.
        with contextlib.suppress(ApiProblem):
            subscriptions = (await visitor.api("GET", "subscriptions", params={"page_size": 20})).get("items", [])
        return page(visitor, "pages/account.html", me=await self._me(visitor), subscriptions=subscriptions)

    # -- real name ---------------------------------------------------------------------------------

    @get("/real-name")
    async def real_name_form(self, visitor: Visitor) -> Template:
        visitor.user()
        return page(visitor, "pages/real_name.html", me=await self._me(visitor), form=Form())

    @post("/real-name")
    async def real_name(self, visitor: Visitor, data: FormData) -> Template:
        visitor.user()
        form = Form(values={"name": text(data, "name", 60), "id_number": text(data, "id_number", 30)})
        result = None
        try:
            result = await visitor.api("POST", "me/real-name", json=form.values)
        except ApiProblem as problem:
            form.fail(problem)
        return page(
            visitor, "pages/real_name.html", status=form.status, me=await self._me(visitor), form=form, result=result
        )

    # -- two-factor ------------------------------------------------------------------------------------

    @get("/totp")
    async def totp_page(self, visitor: Visitor) -> Template:
        session = visitor.user()
        setup = await visitor.deps.redis.get(f"web:totp:{session.sid}")
        uri = setup.decode() if isinstance(setup, bytes) else setup
        return page(
            visitor,
            "pages/totp.html",
            me=await self._me(visitor),
            form=Form(),
            qr=qr_svg(uri) if uri else None,
            secret=_secret_of(uri) if uri else None,
        )

    @post("/totp/start")
    async def totp_start(self, visitor: Visitor) -> Redirect:
        session = visitor.user()
        started = await visitor.api("POST", "me/totp")
        # Kept for the setup page only (10 min), never put in a cookie.
        await visitor.deps.redis.set(f"web:totp:{session.sid}", started["otpauth_uri"], ex=TOTP_SETUP_SECONDS)
        return Redirect("/account/totp", status_code=303)

    @post("/totp/verify")
    async def totp_verify(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        session = visitor.user()
        form = Form(values={"code": text(data, "code", 12)})
        try:
            await visitor.api("POST", "me/totp/verify", json=form.values)
        except ApiProblem as problem:
            form.fail(problem)
        else:
            await visitor.deps.redis.delete(f"web:totp:{session.sid}")
            session.flash = visitor.t("account.totp_on")
            await visitor.deps.sessions.save(session)
            return Redirect("/account", status_code=303)
        setup = await visitor.deps.redis.get(f"web:totp:{session.sid}")
        uri = setup.decode() if isinstance(setup, bytes) else setup
        return page(
            visitor,
            "pages/totp.html",
            status=form.status,
            me=await self._me(visitor),
            form=form,
            qr=qr_svg(uri) if uri else None,
            secret=_secret_of(uri) if uri else None,
        )

    @post("/totp/off")
    async def totp_off(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        session = visitor.user()
        form = Form(values={"code": text(data, "code", 12)})
        try:
            await visitor.api("DELETE", "me/totp", json=form.values)
        except ApiProblem as problem:
            form.fail(problem)
            return page(visitor, "pages/totp.html", status=form.status, me=await self._me(visitor), form=form, qr=None)
        session.flash = visitor.t("account.totp_off")
        await visitor.deps.sessions.save(session)
        return Redirect("/account", status_code=303)

    # -- contacts ----------------------------------------------------------------------------------------

    @get("/contacts")
    async def contacts(self, visitor: Visitor) -> Template:
        visitor.user()
        return page(visitor, "pages/contacts.html", me=await self._me(visitor), form=Form(), pending=None)

    @post("/contacts/{kind:str}")
    async def contact_start(self, visitor: Visitor, kind: str, data: FormData) -> Template:
        visitor.user()
        kind = "phone" if kind == "phone" else "email"
        form = Form(values={kind: text(data, kind, 200)})
        pending = None
        try:
            await visitor.api("POST", f"me/{kind}", json=form.values)
            pending = kind
        except ApiProblem as problem:
            form.fail(problem)
        return page(
            visitor, "pages/contacts.html", status=form.status, me=await self._me(visitor), form=form, pending=pending
        )

    @post("/contacts/{kind:str}/confirm")
    async def contact_confirm(self, visitor: Visitor, kind: str, data: FormData) -> Template | Redirect:
        session = visitor.user()
        kind = "phone" if kind == "phone" else "email"
        form = Form(values={"code": text(data, "code", 12)})
        try:
            me = await visitor.api("POST", f"me/{kind}/confirm", json=form.values)
        except ApiProblem as problem:
            form.fail(problem)
            return page(
                visitor, "pages/contacts.html", status=form.status, me=await self._me(visitor), form=form, pending=kind
            )
        session.user = me
        session.flash = visitor.t("account.contact_bound")
        await visitor.deps.sessions.save(session)
        return Redirect("/account", status_code=303)

    # -- API keys ------------------------------------------------------------------------------------------

    @get("/api-keys")
    async def api_keys(self, visitor: Visitor) -> Template:
        visitor.user()
        keys = await visitor.api("GET", "me/api-keys")
        return page(visitor, "pages/api_keys.html", keys=_items(keys), form=Form(), created=None)

    @post("/api-keys")
    async def create_key(self, visitor: Visitor, data: FormData) -> Template:
        visitor.user()
        form = Form(values={"name": text(data, "name", 100)})
        created = None
        if not form.values["name"]:
            form.add("name", visitor.t("common.required"))
        else:
            try:
                created = await visitor.api("POST", "me/api-keys", json=form.values)
            except ApiProblem as problem:
                form.fail(problem)
        keys = await visitor.api("GET", "me/api-keys")
        # The secret is in this one answer only (never stored by the web, never shown again).
        return page(
            visitor,
            "pages/api_keys.html",
            status=201 if created else form.status,
            keys=_items(keys),
            form=form,
            created=created,
            headers={"Cache-Control": "no-store"},
        )

    @post("/api-keys/{key_id:str}/delete")
    async def delete_key(self, visitor: Visitor, key_id: str) -> Redirect:
        visitor.user()
        await visitor.api("DELETE", f"me/api-keys/{key_id}")
        return Redirect("/account/api-keys", status_code=303)

    # -- sessions ------------------------------------------------------------------------------------------

    @post("/sign-out-everywhere")
    async def sign_out_everywhere(self, visitor: Visitor) -> Response[Any]:
        """Ends every browser session of this user: each one's refresh family is revoked at
        identity and its session deleted here."""
        session = visitor.user()
        for other in await visitor.deps.sessions.all_of(session.user_id):
            with contextlib.suppress(ApiProblem, SignInRequired):
                await visitor.deps.api.logout(await visitor.deps.sessions.token(other), other.refresh_token)
            await visitor.deps.sessions.delete(other.sid)
        gone = Cookie(
            key=visitor.deps.settings.session_cookie, value="", path="/", max_age=0, httponly=True, samesite="lax"
        )
        return Redirect("/login", status_code=303, cookies=[gone])


def _items(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        return list(answer.get("items", []))
    return list(answer or [])


def _secret_of(uri: str) -> str | None:
    from urllib.parse import parse_qs, urlparse

    found = parse_qs(urlparse(uri).query).get("secret")
    return found[0] if found else None
