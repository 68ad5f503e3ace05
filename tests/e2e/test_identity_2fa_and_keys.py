"""TOTP two-factor and partner API keys through the gateway: enabling and disabling 2FA, codes at
login (missing, wrong, replayed), and signed partner requests (good, bad HMAC, replayed nonce,
stale timestamp, revoked key)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pyotp

from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import (
    assert_problem,
    login,
    new_account,
    outbox_events,
    signed_headers,
)

# Fixtures shared by the identity and gateway tests.
gateway = kit.gateway
identity_db = kit.identity_db


def test_totp_enable_login_and_disable(gateway: httpx.Client) -> None:
    _, email, headers = new_account(gateway)
    setup = gateway.post("/api/v1/me/totp", headers=headers)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert (
        setup.json()["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in setup.json()["otpauth_uri"]
    )
    totp = pyotp.TOTP(secret)

    assert_problem(gateway.post("/api/v1/me/totp/verify", json={"code": "123"}, headers=headers), 422)
    assert gateway.get("/api/v1/me", headers=headers).json()["totp_enabled"] is False
    # Codes of the previous, current and next 30 s step are accepted; each step once.
    r = gateway.post("/api/v1/me/totp/verify", json={"code": totp.at(time.time() - 30)}, headers=headers)
    assert r.status_code == 200 and r.json() == {"totp_enabled": True}, r.text
    assert gateway.get("/api/v1/me", headers=headers).json()["totp_enabled"] is True

    body = {"login": email, "password": "correct horse battery"}
    assert_problem(gateway.post("/api/v1/auth/login", json=body), 401, "totp-required")
    assert_problem(gateway.post("/api/v1/auth/login", json={**body, "totp_code": "000000"}), 401, "invalid-totp")
    code = totp.now()
    tokens = login(gateway, email, totp_code=code)
    # The same code again (a replay within its window) is refused.
    assert_problem(gateway.post("/api/v1/auth/login", json={**body, "totp_code": code}), 401, "invalid-totp")

    fresh = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert_problem(gateway.request("DELETE", "/api/v1/me/totp", json={"code": "000000"}, headers=fresh), 422)
    r = gateway.request("DELETE", "/api/v1/me/totp", json={"code": totp.at(time.time() + 30)}, headers=fresh)
    assert r.status_code == 204, r.text
    assert gateway.get("/api/v1/me", headers=fresh).json()["totp_enabled"] is False
    login(gateway, email)  # no code needed any more


def _create_key(gateway: httpx.Client, headers: dict[str, str]) -> tuple[str, str]:
    r = gateway.post("/api/v1/me/api-keys", json={"name": "erp"}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["key_id"], r.json()["secret"]


def test_api_keys_sign_partner_requests(gateway: httpx.Client, identity_db: Any) -> None:
    user_id, _, headers = new_account(gateway)
    key_id, secret = _create_key(gateway, headers)
    listed = gateway.get("/api/v1/me/api-keys", headers=headers).json()
    assert [k["key_id"] for k in listed] == [key_id] and "secret" not in listed[0] and listed[0]["revoked"] is False
    stored = identity_db.api_keys.find_one({"_id": key_id})
    assert secret not in repr(stored)  # sealed at rest

    # A signed GET: the gateway maps the key to its user.
    r = gateway.get("/api/v1/me", headers=signed_headers(key_id, secret, "GET", "/api/v1/me"))
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == user_id

    # A signed POST: the body is part of the signature.
    body = json.dumps({"name": "x", "id_number": "1"}).encode()
    r = gateway.post(
        "/api/v1/me/real-name",
        content=body,
        headers={
            "content-type": "application/json",
            **signed_headers(key_id, secret, "POST", "/api/v1/me/real-name", body),
        },
    )
    # Signed and admitted, but a partner key may not manage the account's own credentials.
    assert_problem(r, 403, "not-for-api-keys")
    tampered = signed_headers(key_id, secret, "POST", "/api/v1/me/real-name", body)
    r = gateway.post("/api/v1/me/real-name", content=body + b" ", headers=tampered)
    assert_problem(r, 401, "invalid-signature")


def test_bad_signatures_replays_and_stale_timestamps_are_refused(gateway: httpx.Client) -> None:
    _, _, headers = new_account(gateway)
    key_id, secret = _create_key(gateway, headers)
    path = "/api/v1/me"

    bad = signed_headers(key_id, "sk_not-the-secret", "GET", path)
    assert_problem(gateway.get(path, headers=bad), 401, "invalid-signature")
    unknown = signed_headers("ak_" + "0" * 24, secret, "GET", path)
    assert (
        assert_problem(gateway.get(path, headers=unknown), 401, "invalid-signature")["detail"]
        == (assert_problem(gateway.get(path, headers=bad), 401)["detail"])
    )
    wrong_path = signed_headers(key_id, secret, "GET", "/api/v1/me/api-keys")
    assert_problem(gateway.get(path, headers=wrong_path), 401, "invalid-signature")
    missing = signed_headers(key_id, secret, "GET", path)
    del missing["X-Nonce"]
    assert_problem(gateway.get(path, headers=missing), 401)

    once = signed_headers(key_id, secret, "GET", path)
    assert gateway.get(path, headers=once).status_code == 200
    assert_problem(gateway.get(path, headers=once), 401, "replayed-nonce")

    stale = signed_headers(key_id, secret, "GET", path, timestamp=int(time.time()) - 301)
    assert_problem(gateway.get(path, headers=stale), 401, "stale-timestamp")
    future = signed_headers(key_id, secret, "GET", path, timestamp=int(time.time()) + 400)
    assert_problem(gateway.get(path, headers=future), 401, "stale-timestamp")
    # With a query string, the partner may sign the path alone or the path with the query.
    listed = "/api/v1/me/api-keys?page=1"
    for signed_path in ("/api/v1/me/api-keys", listed):
        r = gateway.get(listed, headers=kit.signed_headers(key_id, secret, "GET", signed_path))
        assert r.status_code == 200, r.text
    wrong_query = kit.signed_headers(key_id, secret, "GET", "/api/v1/me/api-keys?page=2")
    assert_problem(gateway.get(listed, headers=wrong_query), 401, "invalid-signature")
    # A fresh signature still works: none of the refusals used up anything.
    assert gateway.get(path, headers=signed_headers(key_id, secret, "GET", path)).status_code == 200


def test_a_revoked_key_stops_at_once(gateway: httpx.Client, identity_db: Any) -> None:
    user_id, _, headers = new_account(gateway)
    key_id, secret = _create_key(gateway, headers)
    path = "/api/v1/me"
    assert gateway.get(path, headers=signed_headers(key_id, secret, "GET", path)).status_code == 200  # cached now

    _, _, stranger = new_account(gateway)
    assert_problem(gateway.delete(f"/api/v1/me/api-keys/{key_id}", headers=stranger), 404)
    assert gateway.delete(f"/api/v1/me/api-keys/{key_id}", headers=headers).status_code == 204
    assert gateway.delete(f"/api/v1/me/api-keys/{key_id}", headers=headers).status_code == 204  # idempotent
    assert_problem(gateway.get(path, headers=signed_headers(key_id, secret, "GET", path)), 401, "invalid-signature")
    assert gateway.get("/api/v1/me/api-keys", headers=headers).json()[0]["revoked"] is True
    assert len(outbox_events(identity_db, "identity.api-key-revoked", user_id)) == 1
