"""The gateway's HTTP surface, thin: the public API forward, the web pages forward, the merged
OpenAPI document and the interactive API page (Swagger UI, vendored under `static/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router

from services.gateway import usecases
from services.gateway.deps import GatewayDeps

_METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]
ASSETS = "/api/docs/assets"

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


# OPTIONS is ours, not the framework's: its automatic answer listed every forwarded method.
@route("/api/v1/{path:path}", http_method=[*_METHODS, HttpMethod.OPTIONS], include_in_schema=False)
async def forward(deps: GatewayDeps, request: Request[Any, Any, Any], path: str) -> ASGIResponse:
    # One return type, ASGIResponse: Litestar sends it as it is (a union would be encoded as JSON).
    if request.method == HttpMethod.OPTIONS:
        return await usecases.allow(deps, request, path)
    return await usecases.forward_api(deps, request, path)


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
