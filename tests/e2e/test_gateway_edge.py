"""The gateway's edge on the real stack: bearer tokens verified (expired, forged, revoked), public
routes, rate limits per IP and per user with Retry-After, request size limit, CORS, and 504 when
a service does not answer. Tests that need tiny limits run their own gateway process."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from deploy.platform import Platform, ServiceProcess
from deploy.stack import free_port
from shared.auth import issue_access_token
from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import assert_problem
from tests.helpers import auth, token_for, wait_until

# Fixtures shared by the identity and gateway tests.
gateway = kit.gateway
identity_db = kit.identity_db
redis_db = kit.redis_db


def test_bearer_tokens_are_verified_at_the_edge(gateway: httpx.Client) -> None:
    assert_problem(gateway.get("/api/v1/me"), 401, "unauthorized")
    assert_problem(gateway.get("/api/v1/orders"), 401, "unauthorized")  # any non-public area
    expired = issue_access_token(
        "dev-only-jwt-secret-change-me-0123456789abcdef",
        user_id="u1",
        roles=["buyer"],
        level="retail",
        ttl_seconds=60,
        now=time.time() - 3600,
    )
    body = assert_problem(gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in body["detail"]
    forged = token_for("u1", secret="someone-elses-secret-0123456789abcdef")
    assert_problem(gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    assert_problem(gateway.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"}), 401)
    # A forged token is refused even on a public route (it is never treated as anonymous).
    assert_problem(gateway.get("/api/v1/catalog/tree", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_public_routes_need_no_token(gateway: httpx.Client) -> None:
    r = gateway.post("/api/v1/auth/login", json={"login": "nobody@example.com", "password": "whatever1"})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-credentials")  # identity answered
    r = gateway.get("/api/v1/catalog/tree")
    assert r.status_code != 401


def test_unknown_routes_and_methods_are_problems(gateway: httpx.Client) -> None:
    assert_problem(gateway.get("/api/v1/nowhere"), 404, "not-found")
    assert_problem(gateway.get("/api/v1/me/nowhere", headers=auth()), 404)


class _Silent:
    """A TCP server that accepts connections and never answers: a hung upstream."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def hung() -> Iterator[_Silent]:
    server = _Silent()
    yield server
    server.close()


@pytest.fixture(scope="module")
def strict_process(platform: Platform, hung: _Silent) -> Iterator[tuple[str, str]]:
    """A second gateway with tiny limits, CORS for one origin, and support pointing at a service
    that never answers. Its own Redis database keeps its counters away from the main gateway's."""
    base = platform.processes["gateway"]
    port = free_port()
    redis_url = base.env["REDIS_URL"].rsplit("/", 1)[0] + "/3"
    env = {
        **base.env,
        "PORT": str(port),
        "METRICS_PORT": str(free_port()),  # the main gateway holds its own
        "OTEL_SERVICE_NAME": "gateway-strict",
        "REDIS_URL": redis_url,
        "RATE_LIMIT_PER_IP": "12",
        "RATE_LIMIT_PER_USER": "3",
        "RATE_LIMIT_WINDOW_SECONDS": "30",
        "REQUEST_MAX_BODY_BYTES": "2048",
        "CORS_ALLOW_ORIGINS": json.dumps(["https://shop.example"]),
        "SUPPORT_URL": f"http://127.0.0.1:{hung.port}",
        "UPSTREAM_TIMEOUT_SECONDS": "1",
    }
    process = ServiceProcess(name="gateway", port=port, env=env, log_path=platform.logs_dir / "gateway-strict.log")
    process.start()
    try:
        deadline = time.monotonic() + 30
        last = ""
        while True:
            try:
                r = httpx.get(f"{process.url}/health/ready?scope=edge")
                if r.status_code == 200:
                    break
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            assert time.monotonic() < deadline, f"strict gateway did not start: {last}"
            time.sleep(0.2)
        yield process.url, redis_url
    finally:
        process.stop()


@pytest.fixture
def strict_gateway(strict_process: tuple[str, str]) -> str:
    """The strict gateway with its counters reset (each test starts with a fresh window)."""
    url, redis_url = strict_process
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def test_rate_limits_per_user_and_per_ip(strict_gateway: str) -> None:
    with httpx.Client(base_url=strict_gateway, timeout=10) as client:
        headers = auth()
        statuses = [client.get("/api/v1/me", headers=headers).status_code for _ in range(3)]
        assert 429 not in statuses  # 404: the token's user does not exist, but it got through
        limited = assert_problem(client.get("/api/v1/me", headers=headers), 429, "rate-limited")
        assert "account" in limited["detail"]
        retry = int(client.get("/api/v1/me", headers=headers).headers["retry-after"])
        assert 0 < retry <= 30
        # Another user from the same address is not limited by the first one's count...
        assert client.get("/api/v1/me", headers=auth()).status_code != 429
        # ...until the address itself is over its limit.
        statuses = [client.get("/api/v1/catalog/tree").status_code for _ in range(10)]
        assert statuses[-1] == 429 and statuses[0] != 429
        r = client.get("/api/v1/catalog/tree")
        body = assert_problem(r, 429, "rate-limited")
        assert "address" in body["detail"] and int(r.headers["retry-after"]) > 0


def test_request_size_limit(strict_gateway: str) -> None:
    r = httpx.post(
        strict_gateway + "/api/v1/auth/login", content=b"x" * 4096, headers={"content-type": "application/json"}
    )
    assert_problem(r, 413)


def test_cors_for_allowed_origins_only(strict_gateway: str) -> None:
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    r = httpx.options(strict_gateway + "/api/v1/orders", headers=preflight)
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    r = httpx.options(strict_gateway + "/api/v1/orders", headers={**preflight, "Origin": "https://evil.example"})
    assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_a_hung_service_is_504_problem(strict_gateway: str) -> None:
    started = time.monotonic()
    r = httpx.get(strict_gateway + "/api/v1/help/articles", timeout=10)
    body = assert_problem(r, 504, "upstream-timeout")
    assert "support" in body["detail"] and time.monotonic() - started < 5


def test_idempotency_key_replays_the_first_response(gateway: httpx.Client, identity_db: Any) -> None:
    email = kit.unique_email()
    key = {"Idempotency-Key": kit.new_id()}
    body = {"email": email, "password": kit.PASSWORD}
    first = gateway.post("/api/v1/auth/register", json=body, headers=key)
    again = gateway.post("/api/v1/auth/register", json=body, headers=key)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert identity_db.users.count_documents({"email": email}) == 1
    # Same key, another body: refused, nothing created.
    other_email = kit.unique_email()
    r = gateway.post("/api/v1/auth/register", json={**body, "email": other_email}, headers=key)
    assert_problem(r, 422, "idempotency-key-reused")
    assert identity_db.users.count_documents({"email": other_email}) == 0


def test_idempotency_keys_belong_to_their_caller(gateway: httpx.Client) -> None:
    key = {"Idempotency-Key": kit.new_id()}
    for _ in range(2):
        _, _, headers = kit.new_account(gateway)
        r = gateway.post("/api/v1/me/email", json={"email": kit.unique_email()}, headers={**headers, **key})
        assert r.status_code == 202 and "idempotent-replayed" not in r.headers, r.text


def test_credentials_are_never_kept_for_replay(gateway: httpx.Client, redis_db: Any) -> None:
    _, _, headers = kit.new_account(gateway)
    key = {"Idempotency-Key": kit.new_id()}
    first = gateway.post("/api/v1/me/api-keys", json={"name": "erp"}, headers={**headers, **key})
    second = gateway.post("/api/v1/me/api-keys", json={"name": "erp"}, headers={**headers, **key})
    assert first.status_code == second.status_code == 201
    assert first.json()["key_id"] != second.json()["key_id"]  # no secret was stored to replay
    secret = first.json()["secret"].encode()
    assert not any(secret in (redis_db.get(k) or b"") for k in redis_db.scan_iter("idem:*"))


def test_idempotency_key_in_flight_and_after_a_failure(strict_gateway: str) -> None:
    headers = {**auth(), "Idempotency-Key": "ticket-1"}
    body = {"order_id": "o1", "kind": "invalid-key", "description": "x"}
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(httpx.post(strict_gateway + "/api/v1/tickets", json=body, headers=headers))
    )
    slow.start()
    time.sleep(0.4)
    assert_problem(httpx.post(strict_gateway + "/api/v1/tickets", json=body, headers=headers), 409)
    slow.join()
    assert_problem(results[0], 504)
    # A failed attempt is not kept: the retry reaches the service again (and times out again).
    retry = httpx.post(strict_gateway + "/api/v1/tickets", json=body, headers=headers)
    assert_problem(retry, 504)
    assert "idempotent-replayed" not in retry.headers


def test_edge_readiness_ignores_the_services(strict_gateway: str) -> None:
    # Its support upstream never answers: the platform view says so, the edge view (what the
    # gateway's k8s readiness probe uses) only looks at the gateway's own Redis.
    platform_view = httpx.get(strict_gateway + "/health/ready", timeout=10)
    assert platform_view.status_code == 503 and platform_view.json()["checks"]["support"] == "timeout"
    edge = httpx.get(strict_gateway + "/health/ready?scope=edge", timeout=10)
    assert edge.status_code == 200 and edge.json()["checks"] == {"redis": "ok"}


def test_redis_down_at_the_edge_is_503_problem(platform: Platform) -> None:
    base = platform.processes["gateway"]
    port = free_port()
    env = {
        **base.env,
        "PORT": str(port),
        "METRICS_PORT": str(free_port()),  # the main gateway holds its own
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    process = ServiceProcess(name="gateway", port=port, env=env, log_path=platform.logs_dir / "gateway-noredis.log")
    process.start()
    try:
        wait_until(lambda: _answers(process.url), message="gateway without redis started")
        r = httpx.get(process.url + "/api/v1/me", headers=auth(), timeout=30)
        assert_problem(r, 503, "service-unavailable")
        assert r.headers["retry-after"]
    finally:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health/live").status_code == 200
    except httpx.HTTPError:
        return False
