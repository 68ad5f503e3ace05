"""The gateway applies identity's current claims to tokens issued before an admin's change."""

from __future__ import annotations

from services.gateway.edge import current_claims, remint
from shared.auth import decode_access_token, issue_access_token

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_stored_claims_are_read_from_the_redis_hash() -> None:
    assert current_claims({}) is None
    assert current_claims(None) is None
    assert current_claims({b"version": b"3", b"level": b"vip", b"roles": b"staff,buyer"}) == ("vip", ("buyer", "staff"))
    assert current_claims({b"version": b"3", b"level": b"retail", b"roles": b""}) == ("retail", ())


def test_a_reminted_token_keeps_the_session_and_expiry_and_carries_the_new_claims() -> None:
    token = issue_access_token(SECRET, user_id="u1", roles=["buyer"], level="retail", ttl_seconds=900)
    before = decode_access_token(SECRET, token)
    after = decode_access_token(SECRET, remint(SECRET, token, level="vip", roles=("buyer", "staff")))
    assert (after.level, after.roles) == ("vip", ("buyer", "staff"))
    assert (after.user_id, after.token_id, after.expires_at, after.via) == (
        before.user_id,
        before.token_id,
        before.expires_at,
        before.via,
    )
