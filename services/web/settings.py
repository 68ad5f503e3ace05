"""Web settings: where the public API is, sessions, cookies and page caches."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from shared.config import ServiceSettings


class WebSettings(ServiceSettings):
    service_name: ClassVar[str] = "web"

    # The web is a client of the public API only: every call goes through the gateway.
    gateway_url: str = "http://127.0.0.1:8000"
    api_timeout_seconds: float = 10.0
    api_max_connections: int = 100

    # Browser sessions: an opaque id in a cookie; the tokens stay in Redis this long (sliding).
    session_cookie: str = "kameng_session"
    session_ttl_seconds: int = 14 * 24 * 3600
    # Refresh the access token this long before it expires, so a page never fails on an expiry.
    refresh_margin_seconds: int = 30
    # Cookies are `Secure` outside dev and test (browsers drop Secure cookies on plain http).
    cookie_secure: bool | None = None
    csrf_secret: SecretStr = SecretStr("dev-only-csrf-secret-change-me-0123456789")

    # The console's "trace" link on an order: a viewer address with {trace_id} in it (Jaeger:
    # http://jaeger:16686/trace/{trace_id}; `make dev` points it at deploy/traceview.py). Unset: the
    # console shows the bare trace id.
    trace_viewer_url: str | None = None

    # Pages every visitor sees (home, tree, product) keep their API answers this long.
    page_cache_seconds: float = 5.0
    page_cache_entries: int = 2000

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "prod"
