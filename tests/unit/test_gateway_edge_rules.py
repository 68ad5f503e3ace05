from __future__ import annotations

import hashlib
import hmac

import pytest

from services.gateway.domain import over_limit
from services.gateway.openapi import merge
from services.gateway.public import is_public
from services.gateway.signing import canonical_string, nonce_problem, sign, signature_matches, timestamp_problem


def test_canonical_string_matches_api_md() -> None:
    body = b'{"sku_id":"s1"}'
    expected = f"POST\n/api/v1/orders\n1700000000\nn0nce-123\n{hashlib.sha256(body).hexdigest()}".encode()
    assert canonical_string("post", "/api/v1/orders", "1700000000", "n0nce-123", body) == expected
    signature = hmac.new(b"sk_s", expected, hashlib.sha256).hexdigest()
    assert sign("sk_s", "POST", "/api/v1/orders", "1700000000", "n0nce-123", body) == signature


def test_signature_checks() -> None:
    good = sign("sk_s", "GET", "/api/v1/orders?page=2", "1", "nonce-1234", b"")
    args = {"method": "GET", "timestamp": "1", "nonce": "nonce-1234", "body": b""}
    assert signature_matches("sk_s", good, paths=["/api/v1/orders", "/api/v1/orders?page=2"], **args)
    assert signature_matches("sk_s", good.upper(), paths=["/api/v1/orders?page=2"], **args)
    assert not signature_matches("sk_s", good, paths=["/api/v1/orders"], **args)
    assert not signature_matches("other", good, paths=["/api/v1/orders?page=2"], **args)
    assert not signature_matches("sk_s", "zz", paths=["/api/v1/orders?page=2"], **args)
    assert not signature_matches("sk_s", good, paths=["/api/v1/orders?page=2"], **{**args, "body": b"x"})


@pytest.mark.parametrize(
    ("ts", "ok"),
    [("1000", True), ("701", True), ("699", False), ("1300", True), ("1301", False), ("abc", False), ("-5", False)],
)
def test_timestamp_window(ts: str, ok: bool) -> None:
    assert (timestamp_problem(ts, now=1000, max_skew_seconds=300) is None) == ok


def test_nonce_shape() -> None:
    assert nonce_problem("abcd-1234_X") is None
    assert nonce_problem("short") is not None
    assert nonce_problem("has space!") is not None


@pytest.mark.parametrize(
    ("method", "path", "public"),
    [
        ("POST", "auth/login", True),
        ("POST", "auth/register", True),
        ("POST", "auth/refresh", True),
        ("POST", "auth/logout", False),
        ("GET", "catalog/tree", True),
        ("GET", "catalog/products/p1", True),
        ("POST", "catalog/products", False),
        ("GET", "announcements", True),
        ("GET", "help/articles", True),
        ("POST", "payments/notify/alipay", True),
        ("GET", "me", False),
        ("GET", "orders", False),
        ("GET", "wallet", False),
    ],
)
def test_public_routes(method: str, path: str, public: bool) -> None:
    assert is_public(method, path) == public


def test_over_limit() -> None:
    assert over_limit([3, 1000], 3, "x") is None
    problem = over_limit([4, 1500], 3, "x")
    assert problem is not None and problem.status_code == 429 and problem.headers == {"Retry-After": "2"}


def test_openapi_merge_keeps_public_paths_and_separates_clashing_schemas() -> None:
    gateway = {"openapi": "3.1.0", "paths": {"/health/live": {"get": {}}}, "components": {"schemas": {}}}
    ref = {"$ref": "#/components/schemas/View"}
    identity = {
        "paths": {
            "/api/v1/me": {"get": {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}},
            "/internal/canary": {"post": {}},
        },
        "components": {"schemas": {"View": {"type": "object", "properties": {"user_id": {"type": "string"}}}}},
    }
    wallet = {
        "paths": {
            "/api/v1/wallet": {"get": {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}}
        },
        "components": {"schemas": {"View": {"type": "object", "properties": {"balance_cents": {"type": "integer"}}}}},
    }
    doc = merge(gateway, {"identity": identity, "wallet": wallet})
    assert set(doc["paths"]) == {"/health/live", "/api/v1/me", "/api/v1/wallet"}
    me = doc["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    wal = doc["paths"]["/api/v1/wallet"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert me != wal
    assert "balance_cents" in doc["components"]["schemas"][wal.rsplit("/", 1)[1]]["properties"]
    assert "user_id" in doc["components"]["schemas"][me.rsplit("/", 1)[1]]["properties"]
    assert gateway["paths"] == {"/health/live": {"get": {}}}  # inputs untouched


def test_idempotency_scope_and_fingerprint() -> None:
    from services.gateway.domain import applies_to, fingerprint

    assert applies_to("POST", "/api/v1/orders")
    assert applies_to("POST", "/api/v1/auth/register")
    assert not applies_to("GET", "/api/v1/orders")
    for credential_route in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/me/api-keys", "/api/v1/me/totp"):
        assert not applies_to("POST", credential_route)
    a = fingerprint(b"k", "POST", "/api/v1/orders", "", b'{"q":1}')
    assert a == fingerprint(b"k", "post", "/api/v1/orders", "", b'{"q":1}')
    assert a != fingerprint(b"k", "POST", "/api/v1/orders", "", b'{"q":2}')
    assert a != fingerprint(b"k", "POST", "/api/v1/orders", "x=1", b'{"q":1}')
    assert a != fingerprint(b"other", "POST", "/api/v1/orders", "", b'{"q":1}')


def test_the_same_upload_with_another_multipart_boundary_is_the_same_body() -> None:
    import httpx

    from services.gateway.domain import comparable_body

    def upload(content: bytes) -> tuple[str, bytes]:
        request = httpx.Request("POST", "http://x/api/v1/orders/batch", files={"file": ("o.csv", content)})
        return request.headers["content-type"], request.read()

    (type_a, body_a), (type_b, body_b) = upload(b"sku_id,quantity\ns1,2\n"), upload(b"sku_id,quantity\ns1,2\n")
    assert body_a != body_b  # a new random boundary each time
    assert comparable_body(type_a, body_a) == comparable_body(type_b, body_b)
    type_c, body_c = upload(b"sku_id,quantity\ns1,3\n")
    assert comparable_body(type_c, body_c) != comparable_body(type_a, body_a)
    assert comparable_body("application/json", b"{}") == b"{}"
