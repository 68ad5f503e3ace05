"""problem+json at the HTTP edge (Litestar's in-process test client; no infrastructure)."""

from __future__ import annotations

import msgspec
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from shared.errors import EXCEPTION_HANDLERS, Problem


class Body(msgspec.Struct):
    quantity: int


@get("/out")
async def out_of_stock() -> None:
    raise Problem(409, "out-of-stock", "Out of stock", "only 2 left", available=2)


@get("/crash")
async def crash() -> None:
    raise RuntimeError("secret internals")


@post("/body")
async def body(data: JSONBody[Body]) -> dict[str, int]:
    return {"quantity": data.quantity}


app = Litestar([out_of_stock, crash, body], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)


def test_problem_fields_and_media_type() -> None:
    with TestClient(app) as client:
        r = client.get("/out")
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json() == {
        "type": "/problems/out-of-stock",
        "title": "Out of stock",
        "status": 409,
        "detail": "only 2 left",
        "available": 2,
    }


def test_validation_errors_list_fields() -> None:
    with TestClient(app) as client:
        r = client.post("/body", json={"quantity": "many"})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"] and body["errors"][0]["field"] == "quantity"


def test_unknown_route_and_method() -> None:
    with TestClient(app) as client:
        missing = client.get("/missing")
        wrong = client.delete("/out")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")
    assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("application/problem+json")


def test_crash_hides_internals() -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/crash")
    assert r.status_code == 500
    assert "secret" not in r.text and r.json()["type"].endswith("/internal-error")
