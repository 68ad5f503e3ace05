"""The public OpenAPI document: the gateway's own routes plus every service's `/api/v1` paths.

Services serve the public paths themselves and describe them (with their msgspec schemas) in
their own `/schema/openapi.json`. The gateway fetches those, keeps only the public paths, and
merges them; a schema name two services use for different shapes is prefixed with the
service's name in that service's part. The result is cached, briefly when a service was missing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

log = logging.getLogger(__name__)

PUBLIC_PREFIX = "/api/v1/"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "Partner calls: also X-Timestamp, X-Nonce and X-Signature, the hex HMAC-SHA256 of "
        "METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256(body) keyed by the key's secret.",
    },
}


def _rename_refs(doc: dict[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    if not renames:
        return doc
    text = json.dumps(doc)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    result: dict[str, Any] = json.loads(text)
    return result


def merge(gateway: dict[str, Any], services: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Pure: the merged document (inputs are not changed)."""
    merged: dict[str, Any] = json.loads(json.dumps(gateway))
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components: dict[str, Any] = merged.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    tags: dict[str, Any] = {t["name"]: t for t in merged.get("tags", [])}
    for service, doc in sorted(services.items()):
        theirs: dict[str, Any] = doc.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service.capitalize()}{name}"
            for name, schema in theirs.items()
            if name in schemas and schemas[name] != schema
        }
        doc = _rename_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        for path, item in doc.get("paths", {}).items():
            if path.startswith(PUBLIC_PREFIX):
                paths[path] = item
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    merged["security"] = [{"bearer": []}, {"apiKey": []}, {}]
    if tags:
        merged["tags"] = sorted(tags.values(), key=lambda t: str(t["name"]))
    return merged


class OpenApiDocument:
    def __init__(self, client: httpx.AsyncClient, upstreams: Mapping[str, str], ttl_seconds: float) -> None:
        self._client = client
        self._upstreams = dict(upstreams)
        self._ttl = ttl_seconds
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def get(self, gateway_doc: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached and self._cached[0] > now:
                return self._cached[1]
            docs = await self._fetch_all()
            merged = merge(gateway_doc, docs)
            complete = len(docs) == len(self._upstreams)
            # A partial document is served but refreshed soon, once the missing service is back.
            self._cached = (now + (self._ttl if complete else 2.0), merged)
            return merged

    async def _fetch_all(self) -> dict[str, dict[str, Any]]:
        async def one(name: str, base: str) -> tuple[str, dict[str, Any] | None]:
            try:
                response = await self._client.get(f"{base}/schema/openapi.json", timeout=5.0)
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                return name, body
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("no OpenAPI document from %s: %r", name, exc)
                return name, None

        results = await asyncio.gather(*(one(n, b) for n, b in self._upstreams.items()))
        return {name: doc for name, doc in results if doc is not None}
