"""`/schema/openapi.json` (the merged public document) and the interactive page `/api/docs`."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, MediaType, Request, Response, get

from services.gateway.openapi import OpenApiDocument

# Scalar's API reference, as Litestar's own render plugin uses it.
PAGE = """<!doctype html>
<html>
  <head>
    <title>Kameng API</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="/schema/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>
  </body>
</html>
"""


class DocsController(Controller):
    include_in_schema = False

    @get("/schema/openapi.json", media_type=MediaType.JSON, opt={"skip_tracing": True})
    async def document(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        builder: OpenApiDocument = request.app.state.openapi_document
        own = request.app.openapi_schema.to_schema()
        return Response(json.dumps(await builder.get(own)).encode(), media_type=MediaType.JSON)

    @get(["/api/docs", "/schema"], media_type=MediaType.HTML)
    async def page(self) -> str:
        return PAGE
