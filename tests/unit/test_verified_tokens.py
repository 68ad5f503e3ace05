"""`shared.auth.VerifiedTokens`: a verified access token is remembered until it expires (the
gateway and every service verify each caller's token once, not on every request); a forged,
foreign or expired token is refused as before."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.auth import InvalidToken, VerifiedTokens, issue_access_token

SECRET = "unit-test-secret-0123456789abcdef0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_token_is_verified_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = VerifiedTokens(SECRET)
    token = issue_access_token(SECRET, user_id="u1", roles=("buyer",), level="vip", ttl_seconds=900)
    first = tokens.decode(token)
    assert (first.user_id, first.level) == ("u1", "vip")

    def no_more_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("verified again")

    monkeypatch.setattr(jwt, "decode", no_more_decoding)
    assert tokens.decode(token) is first


def test_a_remembered_token_still_expires() -> None:
    clock = Clock()
    tokens = VerifiedTokens(SECRET, clock=clock, leeway_seconds=5)
    token = issue_access_token(SECRET, user_id="u1", roles=(), level="retail", ttl_seconds=60, now=clock.now)
    tokens.decode(token)
    clock.now += 64
    assert tokens.decode(token).user_id == "u1"  # within the leeway
    clock.now += 2
    with pytest.raises(InvalidToken, match="expired"):
        tokens.decode(token)


def test_forged_and_foreign_tokens_are_refused_every_time() -> None:
    tokens = VerifiedTokens(SECRET)
    foreign = issue_access_token(
        "another-secret-0123456789abcdef0123456789", user_id="u1", roles=(), level="retail", ttl_seconds=900
    )
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.decode(foreign)
        with pytest.raises(InvalidToken):
            tokens.decode("not.a.token")


def test_it_is_bounded() -> None:
    tokens = VerifiedTokens(SECRET, max_entries=2)
    made = [issue_access_token(SECRET, user_id=f"u{i}", roles=(), level="retail", ttl_seconds=900) for i in range(3)]
    for token in made:
        tokens.decode(token)
    assert len(tokens._known) == 2 and made[0] not in tokens._known
