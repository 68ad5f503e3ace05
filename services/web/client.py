"""The typed HTTP client of the public API v1, through the gateway. Pages call these methods with
the signed-in user's token; an answer that is not 2xx becomes an `ApiProblem` (the RFC 9457 body
kept as it is, so a form can show `errors` next to its fields)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

log = logging.getLogger(__name__)

CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("client_address", default=None)
"""The browser's address for the page being rendered (set per request by the visitor middleware
from the X-Forwarded-For the gateway gave the web); sent on with every API call of that page."""

Json = dict[str, Any]


@dataclass
class ApiProblem(Exception):
    """A problem+json answer of the API (or a transport failure shown as one)."""

    status: int
    slug: str
    title: str
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
    body: Json = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.slug}: {self.detail}"

    @property
    def field_errors(self) -> dict[str, str]:
        """{field: message}: the first message of each field (`body` for the whole request)."""
        out: dict[str, str] = {}
        for item in self.errors:
            out.setdefault(str(item.get("field", "body")), str(item.get("message", "")))
        return out

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiProblem:
        body: Json = {}
        if response.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
            try:
                parsed = response.json()
                body = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                body = {}
        slug = str(body.get("type", "")).rsplit("/", 1)[-1] or "error"
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return cls(
            status=response.status_code,
            slug=slug,
            title=str(body.get("title", response.reason_phrase)),
            detail=str(body.get("detail", "")),
            errors=[e for e in errors or [] if isinstance(e, dict)],
            body=body,
        )


class Api:
    """One pooled connection to the gateway for the whole process."""

    def __init__(self, base_url: str, *, timeout: float, max_connections: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            # Calls are made for many users over one client: never keep a cookie between them.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=2.0
            ),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        address = CLIENT_ADDRESS.get()
        if address:
            # The gateway trusts this hop (uvicorn's FORWARDED_ALLOW_IPS) and sees the browser's
            # address, so identity's per-address sign-in limits count each visitor, not the web.
            sent.setdefault("x-forwarded-for", address)
        if token:
            sent["authorization"] = f"Bearer {token}"
        if request_id:
            sent["x-request-id"] = request_id
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            return await self.http.request(
                method,
                "/api/v1/" + path.lstrip("/"),
                json=json,
                params=clean,
                content=content,
                files=files,
                data=data,
                headers=sent,
            )
        except httpx.TimeoutException as exc:
            log.warning("API %s %s timed out: %r", method, path, exc)
            raise ApiProblem(504, "upstream-timeout", "Gateway Timeout", "the platform did not answer in time") from exc
        except httpx.TransportError as exc:
            log.warning("API %s %s unreachable: %r", method, path, exc)
            raise ApiProblem(
                503, "service-unavailable", "Service Unavailable", "the platform is not reachable"
            ) from exc

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (None for 204); an `ApiProblem` for anything not 2xx."""
        response = await self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiProblem.from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- anonymous endpoints (the token is optional: prices follow the caller's level) -------------

    async def tree(self) -> Json:
        return await self.call("GET", "catalog/tree")  # type: ignore[no-any-return]

    async def search(self, q: str, *, category_id: str | None = None, page: int = 1, token: str | None = None) -> Json:
        params = {"q": q, "category_id": category_id, "page": page, "page_size": 20}
        return await self.call("GET", "catalog/products", params=params, token=token)  # type: ignore[no-any-return]

    async def product(self, product_id: str, *, token: str | None = None) -> Json:
        return await self.call("GET", f"catalog/products/{product_id}", token=token)  # type: ignore[no-any-return]

    async def announcements(self) -> Json:
        return await self.call("GET", "announcements")  # type: ignore[no-any-return]

    async def register(self, body: Json, headers: dict[str, str] | None = None) -> Json:
        """`headers`: `X-Kameng-Site` when signing up on a sub-site (the buyer belongs to it)."""
        return await self.call("POST", "auth/register", json=body, headers=headers)  # type: ignore[no-any-return]

    async def login(self, login: str, password: str, totp_code: str | None = None) -> Json:
        body: Json = {"login": login, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        return await self.call("POST", "auth/login", json=body)  # type: ignore[no-any-return]

    async def refresh(self, refresh_token: str) -> Json:
        return await self.call("POST", "auth/refresh", json={"refresh_token": refresh_token})  # type: ignore[no-any-return]

    async def logout(self, token: str, refresh_token: str | None) -> None:
        await self.call("POST", "auth/logout", token=token, json={"refresh_token": refresh_token})

    async def me(self, token: str) -> Json:
        return await self.call("GET", "me", token=token)  # type: ignore[no-any-return]
