"""JSON bodies are checked strictly against their structs (shared/strict_bodies.py): Litestar's lax
conversion took `1` and `"true"` for a boolean and `"5"` for an integer, which the OpenAPI
document does not allow (issue 12)."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.openapi import OpenAPIConfig
from litestar.params import JSONBody
from litestar.testing import TestClient

from shared.http import create_http_app
from shared.telemetry import setup_telemetry


class Row(msgspec.Struct):
    units: int


class Body(msgspec.Struct, forbid_unknown_fields=True):
    on_sale: bool
    rows: list[Row] = []


@post("/plain")
async def plain(data: Body) -> dict[str, bool]:
    return {"on_sale": data.on_sale}


@post("/annotated")
async def annotated(data: JSONBody[list[Row]]) -> dict[str, int]:
    return {"rows": len(data)}


app = create_http_app(
    telemetry=setup_telemetry("strict-bodies-test"),
    openapi=OpenAPIConfig(title="t", version="1"),
    max_body_bytes=10_000,
    route_handlers=[plain, annotated],
)


def test_schema_valid_bodies_pass() -> None:
    with TestClient(app) as client:
        assert client.post("/plain", json={"on_sale": False, "rows": [{"units": 2}]}).json() == {"on_sale": False}
        assert client.post("/annotated", json=[{"units": 1}, {"units": 2}]).json() == {"rows": 2}
        # JSON Schema's integer includes 2.0 (schemathesis sends it as schema-valid).
        assert client.post("/annotated", json=[{"units": 2.0}]).json() == {"rows": 1}
        assert client.post("/annotated", json=[{"units": 2.5}]).status_code == 422


def test_lax_values_are_422_naming_the_field() -> None:
    with TestClient(app) as client:
        for body, field in (
            ({"on_sale": 1}, "on_sale"),
            ({"on_sale": "true"}, "on_sale"),
            ({"on_sale": True, "rows": [{"units": "5"}]}, "rows[0].units"),
        ):
            r = client.post("/plain", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["errors"][0]["field"] == field
        assert client.post("/annotated", json=[{"units": True}]).status_code == 422


def test_malformed_json_stays_a_400() -> None:
    with TestClient(app) as client:
        r = client.post("/plain", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_the_document_says_which_bodies_refuse_unknown_fields() -> None:
    schemas = app.openapi_schema.to_schema()["components"]["schemas"]
    assert schemas["Body"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Row"]  # Row takes extra fields and ignores them
    with TestClient(app) as client:
        assert client.post("/plain", json={"on_sale": True, "extra": 1}).status_code == 422
        assert client.post("/annotated", json=[{"units": 1, "extra": 1}]).status_code == 201
