"""The gateway's OpenAPI document describes every public route that is implemented, with schemas.

PUBLIC_ROUTES is the list from api.md, area by area; an area adds its routes here when it is
built. For each: the path and method are in /schema/openapi.json, a JSON request body (when the
route takes one) and the success response have schemas that resolve."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e import identity_kit as kit

# Fixtures shared by the identity and gateway tests.
gateway = kit.gateway


# (method, path, takes a JSON body, success status)
HEALTH = [("get", "/health/live", False, "200"), ("get", "/health/ready", False, "200")]
IDENTITY = [
    ("post", "/api/v1/auth/register", True, "201"),
    ("post", "/api/v1/auth/login", True, "200"),
    ("post", "/api/v1/auth/refresh", True, "200"),
    ("post", "/api/v1/auth/logout", False, "204"),
    ("post", "/api/v1/auth/password-reset", True, "202"),
    ("post", "/api/v1/auth/password-reset/confirm", True, "204"),
    ("get", "/api/v1/me", False, "200"),
    ("post", "/api/v1/me/real-name", True, "200"),
    ("post", "/api/v1/me/totp", False, "200"),
    ("post", "/api/v1/me/totp/verify", True, "200"),
    ("delete", "/api/v1/me/totp", True, "204"),
    ("post", "/api/v1/me/email", True, "202"),
    ("post", "/api/v1/me/email/confirm", True, "200"),
    ("post", "/api/v1/me/phone", True, "202"),
    ("post", "/api/v1/me/phone/confirm", True, "200"),
    ("post", "/api/v1/me/api-keys", True, "201"),
    ("get", "/api/v1/me/api-keys", False, "200"),
    ("delete", "/api/v1/me/api-keys/{key_id}", False, "204"),
    ("get", "/api/v1/admin/users/{user_id}", False, "200"),
    ("put", "/api/v1/admin/users/{user_id}/level", True, "200"),
    ("put", "/api/v1/admin/users/{user_id}/roles", True, "200"),
    # real-name documents: the upload is multipart (not described as a JSON body)
    ("post", "/api/v1/me/real-name/documents", False, "202"),
    ("get", "/api/v1/admin/real-name/reviews", False, "200"),
    ("post", "/api/v1/admin/real-name/reviews/{review_id}/approve", False, "200"),
    ("post", "/api/v1/admin/real-name/reviews/{review_id}/reject", True, "200"),
]
AGENTS = [
    ("post", "/api/v1/agent/application", True, "202"),
    ("get", "/api/v1/admin/agent-applications", False, "200"),
    ("post", "/api/v1/admin/agent-applications/{application_id}/approve", False, "200"),
    ("put", "/api/v1/agent/site", True, "200"),
    ("get", "/api/v1/agent/site", False, "200"),
    ("get", "/api/v1/sites/{slug}", False, "200"),
    ("get", "/api/v1/agent/orders", False, "200"),
    ("get", "/api/v1/agent/commissions", False, "200"),
    ("post", "/api/v1/agent/withdrawals", True, "201"),
    ("get", "/api/v1/admin/withdrawals", False, "200"),
    ("post", "/api/v1/admin/withdrawals/{withdrawal_id}/approve", False, "200"),
]
PUBLIC_ROUTES = [*HEALTH, *IDENTITY, *AGENTS]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _described(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(doc, schema)
    if "oneOf" in schema or "anyOf" in schema:
        return any(_described(doc, s) for s in schema.get("oneOf", schema.get("anyOf", [])))
    return bool(schema.get("properties") or schema.get("items") or schema.get("type"))


def test_every_public_route_is_described(gateway: httpx.Client) -> None:
    r = gateway.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    missing = []
    for method, path, has_body, status in PUBLIC_ROUTES:
        operation = doc["paths"].get(path, {}).get(method)
        if operation is None:
            missing.append(f"{method.upper()} {path}")
            continue
        responses = operation["responses"]
        assert status in responses, (path, method, list(responses))
        if status != "204":
            content = responses[status]["content"]
            schema = next(iter(content.values()))["schema"]
            assert _described(doc, schema), (path, method, schema)
        if has_body:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert _described(doc, body), (path, method, body)
    assert not missing, f"not in the OpenAPI document: {missing}"
    # Only public paths: services' internal routes stay internal.
    assert not [p for p in doc["paths"] if p.startswith("/internal")]
    assert {"bearer", "apiKey"} <= set(doc["components"]["securitySchemes"])


def test_interactive_api_page(gateway: httpx.Client) -> None:
    r = gateway.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/schema/openapi.json" in r.text


def test_options_allow_matches_the_documented_methods_of_every_public_path(gateway: httpx.Client) -> None:
    """Issue 12: OPTIONS answered `Allow` with every method the gateway forwards; partners' clients
    and schemathesis' allow_header_conformance read it against the document."""
    doc = gateway.get("/schema/openapi.json").json()
    wrong = []
    for template, item in doc["paths"].items():
        if not template.startswith("/api/v1/"):
            continue
        path = "/".join("x1" if p.startswith("{") else p for p in template.split("/"))
        r = gateway.options(path)
        declared = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        allowed = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()} - {"OPTIONS", "HEAD"}
        if r.status_code != 204 or allowed != declared:
            wrong.append((template, r.status_code, r.headers.get("allow"), sorted(declared)))
    assert not wrong, wrong
    assert gateway.options("/api/v1/no/such/path").status_code == 404
