"""The per-request view of who is browsing: the session (or none), the language, and API calls
made with the session's token. A middleware builds it once per page request; pages receive it
by DI as `visitor: Visitor`.

    data = await visitor.api("GET", "orders", params={"group": "completed"})   # signed in
    tree = await visitor.public("GET", "catalog/tree")                          # token if any
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.web.client import CLIENT_ADDRESS, ApiProblem
from services.web.deps import WebDeps
from services.web.i18n import DEFAULT_LANG, LANGS, translate
from services.web.session import PageForbidden, Session, SignInRequired
from shared.sites import SITE_HEADER, normalise_slug

LANG_COOKIE = "kameng_lang"
SITE_COOKIE = "kameng_site"
"""The agent's sub-site (分站) a visitor came in through (`/s/{slug}/`): the storefront pages then
ask the API with `X-Kameng-Site`, so they show the site's prices and sign-up binds the buyer to
it, until the visitor leaves it (`/leave-site`)."""
SITE_PREFIX = "/s/"


@dataclass
class Visitor:
    deps: WebDeps
    session: Session | None
    lang: str
    path: str
    request_id: str
    htmx: bool
    flash: str | None = None
    site: str | None = None
    """The sub-site (slug) of this visit, None on the main site."""

    # -- who ---------------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.session is not None

    def user(self) -> Session:
        """The session, or off to the sign-in page."""
        if self.session is None:
            raise SignInRequired
        return self.session

    def staff(self) -> Session:
        """The session of a staff member or admin; a buyer gets the 403 page."""
        session = self.user()
        if not session.is_staff:
            raise PageForbidden
        return session

    # -- words ------------------------------------------------------------------------------------

    def t(self, key: str, **values: Any) -> str:
        return translate(self.lang, key, **values)

    @property
    def next_param(self) -> str:
        return quote(self.path, safe="")

    # -- the API ------------------------------------------------------------------------------------

    @property
    def site_headers(self) -> dict[str, str]:
        """`X-Kameng-Site` on a sub-site's storefront pages (never on the console's calls)."""
        if self.site is None or self.path.startswith("/admin"):
            return {}
        return {SITE_HEADER: self.site}

    def _with_site(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.site_headers:
            return kwargs
        return {**kwargs, "headers": {**self.site_headers, **(kwargs.get("headers") or {})}}

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call as the signed-in user; a lapsed session leads to the sign-in page."""
        session = self.user()
        sessions = self.deps.sessions
        token = await sessions.token(session)
        kwargs = self._with_site(kwargs)
        try:
            return await self.deps.api.call(method, path, token=token, request_id=self.request_id, **kwargs)
        except ApiProblem as exc:
            if exc.status != 401:
                raise
        # Revoked or expired early: one refresh, one retry; a second 401 ends the session.
        await sessions.refresh(session)
        try:
            return await self.deps.api.call(
                method, path, token=session.access_token, request_id=self.request_id, **kwargs
            )
        except ApiProblem as exc:
            if exc.status == 401:
                await sessions.delete(session.sid)
                raise SignInRequired from exc
            raise

    async def public(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call anyone may make; signed-in visitors send their token (prices follow the level)."""
        if self.session is not None:
            return await self.api(method, path, **kwargs)
        return await self.deps.api.call(method, path, request_id=self.request_id, **self._with_site(kwargs))

    async def cached(self, key: str, method: str, path: str, **kwargs: Any) -> Any:
        """A public answer through the page cache; `key` must include whatever the answer depends
        on (e.g. the member level for prices); a sub-site's answers are cached apart."""
        if self.site_headers:
            key, kwargs = f"site:{self.site}:{key}", self._with_site(kwargs)
        return await self.deps.cache.get(key, lambda: self.deps.api.call(method, path, **kwargs))


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed cookie header is ignored, not an error
                continue
    return {k: m.value for k, m in jar.items()}


def visitor_middleware(deps: WebDeps) -> Callable[[ASGIApp], ASGIApp]:
    """Loads the session (one Redis read) and the language for every page request."""
    cookie_name = deps.settings.session_cookie

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            cookies = _cookies(scope)
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            asked = (query.get("lang") or [""])[0]
            lang = asked if asked in LANGS else cookies.get(LANG_COOKIE, DEFAULT_LANG)
            if lang not in LANGS:
                lang = DEFAULT_LANG
            session = await deps.sessions.load(cookies.get(cookie_name))
            flash = None
            if session is not None and session.flash:
                # Shown once: taken off the session by the page that shows it.
                flash, session.flash = session.flash, None
                await deps.sessions.save(session)
            headers = dict(scope.get("headers", []))
            # Only the gateway reaches the web: the address it forwarded is the browser's.
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[0].strip()
            CLIENT_ADDRESS.set(forwarded or None)
            path = scope.get("path", "/")
            qs = scope.get("query_string", b"").decode("latin-1")
            state = scope.setdefault("state", {})
            entered = _site_in_path(path)
            site = entered or normalise_slug(cookies.get(SITE_COOKIE))
            state["visitor"] = Visitor(
                deps=deps,
                session=session,
                lang=lang,
                path=path + ("?" + qs if qs else ""),
                request_id=str(state.get("request_id", "")),
                htmx=headers.get(b"hx-request") == b"true",
                flash=flash,
                site=site,
            )
            lang_cookie = f"{LANG_COOKIE}={asked}; Path=/; Max-Age=31536000; SameSite=Lax" if asked in LANGS else None
            # Kept only when the site's page answered (an unknown slug is a 404 and keeps nothing).
            site_cookie = (
                f"{SITE_COOKIE}={entered}; Path=/; Max-Age=2592000; SameSite=Lax"
                if entered and entered != cookies.get(SITE_COOKIE)
                else None
            )
            if lang_cookie is None and site_cookie is None:
                await app(scope, receive, send)
                return

            async def send_with_lang(message: Message) -> None:
                if message["type"] == "http.response.start":
                    extra = [c for c in (lang_cookie, site_cookie if message["status"] < 400 else None) if c]
                    headers = [*message.get("headers", []), *((b"set-cookie", c.encode()) for c in extra)]
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_with_lang)

        return middleware

    return factory


def _site_in_path(path: str) -> str | None:
    """The slug of a `/s/{slug}/...` path, None for any other path."""
    if not path.startswith(SITE_PREFIX):
        return None
    return normalise_slug(path[len(SITE_PREFIX) :].split("/", 1)[0])


def visitor_of(scope: Scope) -> Visitor:
    visitor: Visitor = scope["state"]["visitor"]
    return visitor
