"""Password reset (忘记密码) through the gateway on the real stack, with the code read where a
person would read it: the mail sink for an email login, the SMS simulator for a phone login."""

from __future__ import annotations

import httpx

from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import (
    Inboxes,
    assert_problem,
    login,
    register,
    unique_email,
    unique_phone,
)

gateway = kit.gateway
inboxes = kit.inboxes

NEW_PASSWORD = "a brand new passphrase"


def test_reset_by_email_with_the_mailed_code_ends_every_session(gateway: httpx.Client, inboxes: Inboxes) -> None:
    email = unique_email()
    register(gateway, email=email)
    session = login(gateway, email)
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    assert gateway.get("/api/v1/me", headers=headers).status_code == 200

    # Anonymous, and 202 with one answer either way.
    r = gateway.post("/api/v1/auth/password-reset", json={"login": email.upper()})
    assert r.status_code == 202, r.text
    assert r.json() == {"detail": "if this login belongs to an account, a code was sent to it", "expires_in": 600}
    code = inboxes.next_code(email)

    wrong = "000000" if code != "000000" else "111111"
    assert_problem(
        gateway.post(
            "/api/v1/auth/password-reset/confirm", json={"login": email, "code": wrong, "new_password": NEW_PASSWORD}
        ),
        422,
    )
    assert_problem(
        gateway.post("/api/v1/auth/password-reset/confirm", json={"login": email, "code": code, "new_password": "x"}),
        422,
    )
    r = gateway.post(
        "/api/v1/auth/password-reset/confirm", json={"login": email, "code": code, "new_password": NEW_PASSWORD}
    )
    assert r.status_code == 204, r.text

    # Every earlier session is over: its access token at the gateway, its refresh token too.
    assert gateway.get("/api/v1/me", headers=headers).status_code == 401
    assert_problem(gateway.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}), 401)
    assert_problem(gateway.post("/api/v1/auth/login", json={"login": email, "password": kit.PASSWORD}), 401)
    login(gateway, email, NEW_PASSWORD)
    # The code worked once.
    assert_problem(
        gateway.post(
            "/api/v1/auth/password-reset/confirm",
            json={"login": email, "code": code, "new_password": "yet another passphrase"},
        ),
        422,
    )


def test_reset_by_phone_with_the_texted_code(gateway: httpx.Client, inboxes: Inboxes) -> None:
    phone = unique_phone()
    register(gateway, phone=phone)
    assert gateway.post("/api/v1/auth/password-reset", json={"login": f"+86 {phone}"}).status_code == 202
    code = inboxes.next_code(phone)
    r = gateway.post(
        "/api/v1/auth/password-reset/confirm", json={"login": phone, "code": code, "new_password": NEW_PASSWORD}
    )
    assert r.status_code == 204, r.text
    login(gateway, phone, NEW_PASSWORD)


def test_reset_does_not_tell_which_logins_exist_and_is_limited(gateway: httpx.Client, inboxes: Inboxes) -> None:
    nobody = unique_email()
    someone = unique_email()
    register(gateway, email=someone)
    answers = [  # the second ask for `someone` is too soon: held back, answered alike
        gateway.post("/api/v1/auth/password-reset", json={"login": login_name})
        for login_name in (nobody, someone, someone)
    ]
    assert {(r.status_code, r.content) for r in answers} == {(202, answers[0].content)}
    inboxes.next_code(someone)
    assert len(inboxes.codes(someone)) == 1
    assert inboxes.codes(nobody) == []
    # A wrong code for an unknown login and for a real one read the same.
    body = {"code": "123456", "new_password": NEW_PASSWORD}
    unknown = gateway.post("/api/v1/auth/password-reset/confirm", json={"login": nobody, **body})
    real = gateway.post("/api/v1/auth/password-reset/confirm", json={"login": someone, **body})
    assert unknown.status_code == real.status_code == 422
    assert unknown.json()["errors"] == real.json()["errors"]
