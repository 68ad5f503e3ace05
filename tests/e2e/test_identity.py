"""Identity through the gateway on the real stack: accounts, login and tokens, brute-force locks,
real-name verification, binding contacts, admin levels and roles, and its events."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from deploy.platform import Platform
from services.identity.lockout import _keys, _subject
from shared.config import DEV_JWT_SECRET
from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import (
    PASSWORD,
    Inboxes,
    admin_headers,
    assert_problem,
    id_number,
    login,
    new_account,
    outbox_events,
    register,
    unique_email,
    unique_phone,
)
from tests.helpers import wait_until

# Fixtures shared by the identity and gateway tests.
gateway = kit.gateway
identity_db = kit.identity_db
redis_db = kit.redis_db
inboxes = kit.inboxes


def test_register_by_email_or_phone_and_duplicates(gateway: httpx.Client, identity_db: Any) -> None:
    email = unique_email()
    user_id = register(gateway, email=email.upper())  # stored normalised
    phone = unique_phone()
    phone_user = register(gateway, phone=f"+86 {phone}")
    assert identity_db.users.find_one({"_id": user_id})["email"] == email
    assert identity_db.users.find_one({"_id": phone_user})["phone"] == phone
    # argon2id, never the password itself
    assert identity_db.users.find_one({"_id": user_id})["password_hash"].startswith("$argon2id$")

    assert_problem(gateway.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 409)
    assert_problem(gateway.post("/api/v1/auth/register", json={"phone": phone, "password": PASSWORD}), 409)
    assert identity_db.users.count_documents({"email": email}) == 1

    event = outbox_events(identity_db, "identity.user-registered", user_id)
    assert len(event) == 1
    wait_until(
        lambda: identity_db.outbox.find_one({"_id": event[0]["_id"], "sent_at": {"$exists": True}}), message="relayed"
    )


def test_register_refuses_bad_input_and_changes_nothing(gateway: httpx.Client, identity_db: Any) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"phone": "12012345678", "password": PASSWORD}, "phone"),  # 12x is not a mobile prefix
        ({"phone": "1391234567", "password": PASSWORD}, "phone"),  # 10 digits
        ({"email": unique_email(), "password": "short"}, "password"),
        ({"email": unique_email(), "password": "x" * 200}, "password"),  # too long
        ({"password": PASSWORD}, "email"),
    ]
    before = identity_db.users.count_documents({})
    for body, field in cases:
        problem = assert_problem(gateway.post("/api/v1/auth/register", json=body), 422, "validation-error")
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    # A password of the stated length on the deny-list: its own slug (no schema states a list).
    common = {"email": unique_email(), "password": "password123"}
    problem = assert_problem(gateway.post("/api/v1/auth/register", json=common), 422, "weak-password")
    assert problem["errors"] == [{"field": "password", "message": "is too common"}]
    # Malformed bodies are problems too.
    assert_problem(gateway.post("/api/v1/auth/register", json={"email": unique_email()}), 422)  # no password
    assert_problem(gateway.post("/api/v1/auth/register", json={"email": 5, "password": PASSWORD}), 422)
    r = gateway.post("/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")
    assert_problem(gateway.post("/api/v1/auth/login", json={"password": PASSWORD}), 422)
    assert identity_db.users.count_documents({}) == before


def test_login_me_and_identical_errors(gateway: httpx.Client) -> None:
    email = unique_email()
    user_id = register(gateway, email=email)
    tokens = login(gateway, email)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and tokens["refresh_token"]
    claims = jwt.decode(tokens["access_token"], DEV_JWT_SECRET, algorithms=["HS256"], issuer="kameng")
    assert claims["sub"] == user_id and claims["roles"] == ["buyer"] and claims["level"] == "retail"

    me = gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json() | {"id_number_masked": None} == {
        "user_id": user_id,
        "email": email,
        "phone": None,
        "level": "retail",
        "roles": ["buyer"],
        "real_name_verified": False,
        "totp_enabled": False,
        "id_number_masked": None,
        "site": None,  # signed up on the main site, not a sub-site (分站)
    }

    wrong = assert_problem(
        gateway.post("/api/v1/auth/login", json={"login": email, "password": "wrong password!"}), 401
    )
    unknown = assert_problem(
        gateway.post("/api/v1/auth/login", json={"login": unique_email(), "password": "wrong password!"}), 401
    )
    assert wrong == unknown  # nothing tells an unknown account from a wrong password


def test_refresh_rotates_and_reuse_revokes_the_family(gateway: httpx.Client) -> None:
    email = unique_email()
    register(gateway, email=email)
    first = login(gateway, email)
    r = gateway.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"]
    third = gateway.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).json()
    latest = {"Authorization": f"Bearer {third['access_token']}"}
    assert gateway.get("/api/v1/me", headers=latest).status_code == 200

    # The stolen first token comes back: refused, and the whole family with it.
    assert_problem(gateway.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401)
    assert_problem(gateway.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}), 401)
    # ...and the access tokens issued in that family stop working at the gateway at once.
    for pair in (first, second, third):
        assert_problem(gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"}), 401)
    assert_problem(gateway.post("/api/v1/auth/refresh", json={"refresh_token": "rt_made-up"}), 401)
    # Another session (its own family) is untouched.
    other = login(gateway, email)
    assert gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {other['access_token']}"}).status_code == 200
    assert gateway.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_revokes_the_session_and_the_access_token(gateway: httpx.Client) -> None:
    email = unique_email()
    register(gateway, email=email)
    tokens = login(gateway, email)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert gateway.get("/api/v1/me", headers=headers).status_code == 200
    assert gateway.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert_problem(gateway.get("/api/v1/me", headers=headers), 401)
    assert_problem(gateway.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    assert_problem(gateway.post("/api/v1/auth/logout"), 401)


def test_repeated_failures_lock_the_account_for_a_growing_period(gateway: httpx.Client, redis_db: Any) -> None:
    email = unique_email()
    register(gateway, email=email)
    bad = {"login": email, "password": "not the password"}
    for _ in range(4):
        assert_problem(gateway.post("/api/v1/auth/login", json=bad), 401)
    locked = assert_problem(gateway.post("/api/v1/auth/login", json=bad), 429, "too-many-attempts")
    first_wait = int(gateway.post("/api/v1/auth/login", json=bad).headers["retry-after"])
    assert 0 < first_wait <= 60, locked
    # While locked even the right password is refused.
    r = gateway.post("/api/v1/auth/login", json={"login": email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0

    # The lock runs out (simulated by removing it); five more failures lock for twice as long.
    redis_db.delete(_keys(_subject("account", email))[1])
    for _ in range(4):
        assert_problem(gateway.post("/api/v1/auth/login", json=bad), 401)
    second = gateway.post("/api/v1/auth/login", json=bad)
    assert second.status_code == 429 and 60 < int(second.headers["retry-after"]) <= 120

    redis_db.delete(_keys(_subject("account", email))[1])
    login(gateway, email)  # the right password works again once the lock is gone


def test_failures_from_one_address_lock_that_address(platform: Platform, gateway: httpx.Client) -> None:
    # The client address is made up: the test runs on 127.0.0.1, which uvicorn trusts as a proxy
    # (FORWARDED_ALLOW_IPS), so the gateway takes the address from X-Forwarded-For and passes it
    # on. Locking 127.0.0.1 itself would lock the rest of the suite out.
    ip = "203.0.113.77"
    with httpx.Client(base_url=platform.gateway_url, timeout=30, headers={"X-Forwarded-For": ip}) as client:
        statuses = [
            client.post("/api/v1/auth/login", json={"login": unique_email(), "password": "guess guess"}).status_code
            for _ in range(100)
        ]
        assert statuses[:99] == [401] * 99 and statuses[99] == 429
        email = unique_email()
        register(gateway, email=email)
        r = client.post("/api/v1/auth/login", json={"login": email, "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    login(gateway, email)  # other addresses are not affected


def test_sign_ins_through_the_storefront_are_limited_per_browser_address(
    platform: Platform, gateway: httpx.Client
) -> None:
    """The storefront signs in through the API on the browser's behalf: identity must count the
    browser's address, not the web's (one attacker would otherwise lock every browser out)."""
    attacker, visitor = "203.0.113.91", "198.51.100.23"
    email = unique_email()
    register(gateway, email=email)

    def sign_in(client: httpx.Client, login: str, password: str) -> int:
        if not client.cookies.get("kameng_csrf"):
            client.get("/login")
        form = {"login": login, "password": password, "_csrf_token": client.cookies.get("kameng_csrf") or ""}
        return client.post("/login", data=form).status_code

    with httpx.Client(base_url=platform.gateway_url, timeout=30, headers={"X-Forwarded-For": attacker}) as browser:
        statuses = [sign_in(browser, unique_email(), "guess guess") for _ in range(100)]
        assert statuses[:99] == [401] * 99 and statuses[99] == 429  # the attacker's address is locked
        assert sign_in(browser, email, PASSWORD) == 429
    with httpx.Client(base_url=platform.gateway_url, timeout=30, headers={"X-Forwarded-For": visitor}) as browser:
        assert sign_in(browser, email, PASSWORD) == 303  # another browser still signs in


def test_real_name_verification(gateway: httpx.Client, identity_db: Any) -> None:
    user_id, _, headers = new_account(gateway)
    number = id_number()
    bad_checksum = number[:17] + ("0" if number[17] != "0" else "1")
    problem = assert_problem(
        gateway.post("/api/v1/me/real-name", json={"name": "张三", "id_number": bad_checksum}, headers=headers), 422
    )
    assert problem["errors"][0]["field"] == "id_number"
    future = id_number(birth="21990101")
    assert_problem(
        gateway.post("/api/v1/me/real-name", json={"name": "张三", "id_number": future}, headers=headers), 422
    )
    assert gateway.get("/api/v1/me", headers=headers).json()["real_name_verified"] is False

    r = gateway.post("/api/v1/me/real-name", json={"name": "张三", "id_number": number.lower()}, headers=headers)
    assert r.status_code == 200, r.text
    masked = r.json()["id_number_masked"]
    assert r.json()["real_name_verified"] is True and masked == number[:3] + "*" * 11 + number[-4:]
    me = gateway.get("/api/v1/me", headers=headers).json()
    assert me["real_name_verified"] is True and me["id_number_masked"] == masked
    assert_problem(
        gateway.post("/api/v1/me/real-name", json={"name": "张三", "id_number": number}, headers=headers),
        409,
        "already-verified",
    )

    # One ID number verifies one account.
    other_id, _, other = new_account(gateway)
    assert_problem(
        gateway.post("/api/v1/me/real-name", json={"name": "李四", "id_number": number}, headers=other),
        409,
        "id-number-taken",
    )
    assert gateway.get("/api/v1/me", headers=other).json()["real_name_verified"] is False

    # Stored sealed: neither the number nor the name is in the database or the event in the clear.
    raw = repr(identity_db.users.find_one({"_id": user_id}))
    assert number not in raw and "张三" not in raw
    events = outbox_events(identity_db, "identity.user-verified", user_id)
    assert len(events) == 1 and number.encode() not in bytes(events[0]["value"])
    assert outbox_events(identity_db, "identity.user-verified", other_id) == []


def test_bind_phone_and_change_email_with_one_time_codes(
    gateway: httpx.Client, identity_db: Any, inboxes: Inboxes
) -> None:
    user_id, _, headers = new_account(gateway)
    phone = unique_phone()
    assert_problem(gateway.post("/api/v1/me/phone", json={"phone": "123"}, headers=headers), 422)
    r = gateway.post("/api/v1/me/phone", json={"phone": phone}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == phone[:3] + "****" + phone[-4:]
    notification = identity_db.notifications.find_one({"user_id": user_id, "to": phone})
    assert notification["channel"] == "sms"
    code = inboxes.next_code(phone)  # delivered by SMS
    # The code is stored hashed only, and its delivery record keeps it sealed, erased once sent.
    assert code not in repr(identity_db.contact_codes.find_one({"_id": f"{user_id}:phone"}))
    sent = wait_until(lambda: identity_db.notifications.find_one({"user_id": user_id, "to": phone, "status": "sent"}))
    assert code not in repr(sent) and "sealed" not in sent

    wrong = "000000" if code != "000000" else "111111"
    assert_problem(gateway.post("/api/v1/me/phone/confirm", json={"code": wrong}, headers=headers), 422)
    assert gateway.get("/api/v1/me", headers=headers).json()["phone"] is None
    r = gateway.post("/api/v1/me/phone/confirm", json={"code": code}, headers=headers)
    assert r.status_code == 200 and r.json()["phone"] == phone
    # Used once.
    assert_problem(gateway.post("/api/v1/me/phone/confirm", json={"code": code}, headers=headers), 409)
    changed = outbox_events(identity_db, "identity.contact-changed", user_id)
    assert len(changed) == 1

    # The number now belongs to this account; another account cannot take it.
    _, _, other = new_account(gateway)
    assert_problem(gateway.post("/api/v1/me/phone", json={"phone": phone}, headers=other), 409, "contact-taken")

    new_email = unique_email()
    assert gateway.post("/api/v1/me/email", json={"email": new_email}, headers=headers).status_code == 202
    # A resend right away is refused (no SMS/email bombing through us).
    assert_problem(gateway.post("/api/v1/me/email", json={"email": new_email}, headers=headers), 429)
    code = inboxes.next_code(new_email)  # delivered by email
    r = gateway.post("/api/v1/me/email/confirm", json={"code": code}, headers=headers)
    assert r.status_code == 200 and r.json()["email"] == new_email
    login(gateway, new_email)


def test_contact_code_attempts_are_limited(gateway: httpx.Client, inboxes: Inboxes) -> None:
    _, _, headers = new_account(gateway)
    phone = unique_phone()
    assert gateway.post("/api/v1/me/phone", json={"phone": phone}, headers=headers).status_code == 202
    code = inboxes.next_code(phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert_problem(gateway.post("/api/v1/me/phone/confirm", json={"code": wrong}, headers=headers), 422)
    assert_problem(gateway.post("/api/v1/me/phone/confirm", json={"code": code}, headers=headers), 429)
    assert gateway.get("/api/v1/me", headers=headers).json()["phone"] is None


def test_admin_sets_level_and_roles_as_events(gateway: httpx.Client, identity_db: Any) -> None:
    user_id, email, headers = new_account(gateway)
    admin = admin_headers(gateway)
    path = f"/api/v1/admin/users/{user_id}"
    assert_problem(gateway.put(path + "/level", json={"level": "vip"}, headers=headers), 403)
    assert_problem(gateway.put(path + "/level", json={"level": "platinum"}, headers=admin), 422)
    assert_problem(gateway.put("/api/v1/admin/users/nobody/level", json={"level": "vip"}, headers=admin), 404)

    r = gateway.put(path + "/level", json={"level": "vip"}, headers=admin)
    assert r.status_code == 200 and r.json()["level"] == "vip", r.text
    assert gateway.put(path + "/level", json={"level": "vip"}, headers=admin).status_code == 200  # no change
    [changed] = outbox_events(identity_db, "identity.level-changed", user_id)
    assert b'"previous_level":"retail"' in bytes(changed["value"])

    assert_problem(gateway.put(path + "/roles", json={"roles": ["buyer", "root"]}, headers=admin), 422)
    r = gateway.put(path + "/roles", json={"roles": ["buyer", "staff"]}, headers=admin)
    assert r.status_code == 200 and r.json()["roles"] == ["buyer", "staff"]
    assert len(outbox_events(identity_db, "identity.roles-changed", user_id)) == 1

    # The next token carries the new level and roles.
    claims = jwt.decode(login(gateway, email)["access_token"], DEV_JWT_SECRET, algorithms=["HS256"], issuer="kameng")
    assert claims["level"] == "vip" and claims["roles"] == ["buyer", "staff"]


def test_bootstrap_admin_exists_once(gateway: httpx.Client, identity_db: Any) -> None:
    admin = gateway.get("/api/v1/me", headers=admin_headers(gateway)).json()
    assert set(admin["roles"]) >= {"admin", "staff"}
    assert identity_db.users.count_documents({"email": admin["email"]}) == 1


def _concurrently(n: int, call: Any) -> list[httpx.Response]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_concurrent_duplicates_create_one_account_and_one_refresh(platform: Platform, identity_db: Any) -> None:
    email = unique_email()

    def register_once() -> httpx.Response:
        return httpx.post(
            platform.gateway_url + "/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
        )

    statuses = sorted(r.status_code for r in _concurrently(6, register_once))
    assert statuses == [201] + [409] * 5, statuses
    assert identity_db.users.count_documents({"email": email}) == 1

    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        token = login(client, email)["refresh_token"]

    def refresh_once() -> httpx.Response:
        return httpx.post(platform.gateway_url + "/api/v1/auth/refresh", json={"refresh_token": token}, timeout=30)

    statuses = sorted(r.status_code for r in _concurrently(5, refresh_once))
    # One rotation wins; the others present a used token, which also revokes the family.
    assert statuses == [200, 401, 401, 401, 401], statuses
