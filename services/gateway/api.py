"""The gateway's HTTP surface, thin: the public API forward, the web pages forward, the merged
OpenAPI document and the interactive API page (Swagger UI, vendored under `static/`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Receive, Scope, Send

from services.gateway import usecases
from services.gateway.deps import GatewayDeps

_METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]
ASSETS = "/api/docs/assets"
API_ROUTE = "/api/v1/{path:path}"
API_TEMPLATE = "/api/v1/{path}"
"""How the router names `API_ROUTE` in `scope["path_template"]` (the label of its metrics)."""

# The interactive API reference, from vendored Swagger UI: nothing is fetched from a CDN.
PAGE = f"""<!doctype html>
<html lang="en">
  <head>
    <title>Kameng API</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <link rel="stylesheet" href="{ASSETS}/swagger-ui.css" />
  </head>
  <body>
    <div id="api-reference"></div>
    <script src="{ASSETS}/swagger-ui-bundle.js"></script>
    <script>
      // validatorUrl null: no badge fetched from the public validator.
      window.ui = SwaggerUIBundle({{
        url: "/schema/openapi.json", dom_id: "#api-reference", deepLinking: true, validatorUrl: null
      }});
    </script>
  </body>
</html>
"""


async def _api(deps: GatewayDeps, request: Request[Any, Any, Any], path: str) -> ASGIResponse:
    if request.method == HttpMethod.OPTIONS:
        return await usecases.allow(deps, request, path)
    return await usecases.forward_api(deps, request, path)


# OPTIONS is ours, not the framework's: its automatic answer listed every forwarded method.
@route(API_ROUTE, http_method=[*_METHODS, HttpMethod.OPTIONS], include_in_schema=False)
async def forward(deps: GatewayDeps, request: Request[Any, Any, Any], path: str) -> ASGIResponse:
    # One return type, ASGIResponse: Litestar sends it as it is (a union would be encoded as JSON).
    # Requests reach `DirectForward` first; this handler is what routing finds, and answers when
    # the app runs without it.
    return await _api(deps, request, path)


class DirectForward:
    """Every `/api/v1/*` request, handed to the forward straight from the ASGI stack once routing
    has found the `forward` route (`API_ROUTE`), without the work Litestar does around a handler
    call (dependency injection, signature parsing, before-request hooks, response wrapping). That
    work was 12-14 % of the gateway's CPU on a kept answer, for a handler whose only inputs are
    the request and the gateway's one `deps` (Decision 36). What stays Litestar's: routing
    (404, 405, the route template that names spans and metrics), the edge layer around this one,
    the request body size limit (`Request.body`), and problem+json for every raised Problem.
    (Mounting the forward as a raw ASGI app instead was tried and dropped: Litestar's mount adds
    a trailing slash, matches `/api/v1x` and gives no route template; an `@asgi` handler cannot
    take a path parameter.)"""

    __slots__ = ("app", "deps")

    def __init__(self, app: ASGIApp, deps: GatewayDeps) -> None:
        self.app = app
        self.deps = deps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The route Litestar's router found (it registers a copy of `forward`, so by its template).
        if scope.get("path_template") != API_TEMPLATE:
            await self.app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = Request(scope, receive, send)
        response = await _api(self.deps, request, scope["path_params"]["path"])
        await response(scope, receive, send)


def direct_forward(deps: GatewayDeps) -> Callable[[ASGIApp], ASGIApp]:
    return lambda app: DirectForward(app, deps)


@route(["/", "/{path:path}"], http_method=_METHODS, include_in_schema=False)
async def forward_web(deps: GatewayDeps, request: Request[Any, Any, Any], path: str | None = None) -> ASGIResponse:
    return await usecases.forward_page(deps, request, path)


class DocsController(Controller):
    include_in_schema = False

    @get("/schema/openapi.json", media_type=MediaType.JSON, opt={"skip_tracing": True})
    async def document(self, deps: GatewayDeps, request: Request[Any, Any, Any]) -> Response[bytes]:
        own = request.app.openapi_schema.to_schema()
        return Response(await usecases.openapi_document(deps, own), media_type=MediaType.JSON)

    @get(["/api/docs", "/schema"], media_type=MediaType.HTML)
    async def page(self) -> str:
        return PAGE


assets = create_static_files_router(
    path=ASSETS, directories=[Path(__file__).parent / "static" / "vendor" / "swagger-ui"], include_in_schema=False
)

CONTROLLERS = [DocsController, assets, forward, forward_web]
