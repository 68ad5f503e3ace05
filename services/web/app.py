"""Wiring of the web process: the page router (visitor middleware, HTML error pages), static
files, CSRF (double-submit cookie), templates, health. No logic here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from services.web.deps import WebDeps, build
from services.web.errors import HTML_HANDLERS
from services.web.pages import CONTROLLERS
from services.web.render import STATIC, environment
from services.web.session import PageNotFound
from services.web.settings import WebSettings
from services.web.visitor import Visitor, visitor_middleware
from shared.http import Check, create_http_app, health_controller
from shared.telemetry import Telemetry, setup_logging, setup_telemetry


@get("/{path:path}", include_in_schema=False)
async def no_such_page(path: str) -> Template:
    raise PageNotFound


def create_app(settings: WebSettings | None = None, *, telemetry: Telemetry | None = None) -> Litestar:
    settings = settings or WebSettings()
    setup_logging(settings.service_name, settings.log_level)
    telemetry = telemetry or setup_telemetry(settings.service_name)
    deps = build(settings)

    def checks(scope: str) -> Mapping[str, Check]:
        return {"redis": deps.redis.ping}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await deps.aclose()

    def provide_deps() -> WebDeps:
        return deps

    def provide_visitor(request: Request[Any, Any, Any]) -> Visitor:
        visitor: Visitor = request.scope["state"]["visitor"]
        return visitor

    pages = Router(
        path="/",
        route_handlers=[*CONTROLLERS, no_such_page],
        middleware=[visitor_middleware(deps)],
        exception_handlers=HTML_HANDLERS,
        dependencies={"visitor": Provide(provide_visitor, sync_to_thread=False)},
        include_in_schema=False,
    )
    app = create_http_app(
        telemetry=telemetry,
        openapi=OpenAPIConfig(title="Kameng web", version="1.0.0", path="/schema/web"),
        max_body_bytes=settings.request_max_body_bytes,
        route_handlers=[
            health_controller(checks),
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
            pages,
        ],
        dependencies={"deps": Provide(provide_deps, sync_to_thread=False)},
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment())),
        csrf_config=CSRFConfig(
            secret=settings.csrf_secret.get_secret_value(),
            cookie_name="kameng_csrf",
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            cookie_samesite="lax",
            header_name="x-csrftoken",
            exclude=["/health"],
        ),
        lifespan=[lifespan],
    )
    return app
