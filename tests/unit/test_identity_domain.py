from __future__ import annotations

import time
from datetime import date

import pyotp
import pytest

from services.identity.domain import (
    id_check_char,
    id_number_problem,
    lock_seconds,
    mask_email,
    mask_id_number,
    mask_phone,
    normalize_email,
    normalize_phone,
    password_problems,
    real_name_problem,
    roles_problem,
    totp_step,
)
from services.identity.secrets import DEV_SECRETS_KEY, SecretBox

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM ", "alice@example.com"),
        ("a.b+tag@sub.example.cn", "a.b+tag@sub.example.cn"),
        ("no-at-sign", None),
        ("a@b", None),
        ("a@@b.com", None),
        ("a b@c.com", None),
        ("x" * 65 + "@example.com", None),
    ],
)
def test_email(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13912345678", "13912345678"),
        ("+86 139-1234-5678", "13912345678"),
        ("008619912345678", "19912345678"),
        ("12912345678", None),
        ("1391234567", None),
        ("139123456789", None),
        ("23912345678", None),
    ],
)
def test_mainland_mobile(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_password_policy() -> None:
    assert password_problems("correct horse battery") == []
    assert password_problems("short1") == ["must be at least 8 characters"]
    assert "is too common" in password_problems("Password123")
    assert "is too common" in password_problems("aaaaaaaaaaaa")
    assert password_problems("xy" * 65) == ["must be at most 128 characters"]
    assert password_problems("me@example.com", identifiers=("me@example.com",))


def test_gb11643_check_character() -> None:
    # The standard's own example: 11010519491231002X.
    assert id_check_char("11010519491231002") == "X"
    assert id_number_problem("11010519491231002X", today=TODAY) is None
    assert id_number_problem("11010519491231002x", today=TODAY) is None
    assert "check digit" in (id_number_problem("110105194912310021", today=TODAY) or "")


@pytest.mark.parametrize(
    ("first17", "reason"),
    [
        ("11010519491331002", "birth date"),  # month 13
        ("11010519490230002", "birth date"),  # 30 February
        ("11010521991231002", "birth date"),  # in the future
        ("11010518891231002", "birth date"),  # before 1900
        ("99010519491231002", "region"),
    ],
)
def test_id_number_must_be_plausible(first17: str, reason: str) -> None:
    number = first17 + id_check_char(first17)  # a correct checksum, so only the rule under test fails
    assert reason in (id_number_problem(number, today=TODAY) or "")


def test_id_number_shape() -> None:
    assert id_number_problem("1101051949123100", today=TODAY)
    assert id_number_problem("11010519491231002Y", today=TODAY)


def test_masking() -> None:
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_phone("13912345678") == "139****5678"
    assert mask_email("alice@example.com") == "a***@example.com"


def test_real_name_and_roles() -> None:
    assert real_name_problem("张三") is None
    assert real_name_problem("阿依古丽·买买提") is None
    assert real_name_problem("Zhang San") is None
    assert real_name_problem("张") is not None
    assert real_name_problem("<script>") is not None
    assert roles_problem(["buyer", "staff"]) is None
    assert roles_problem([]) is not None
    assert roles_problem(["internal"]) is not None  # the gateway's service role cannot be granted


def test_lock_period_doubles_up_to_a_cap() -> None:
    assert [lock_seconds(n, base_seconds=60, max_seconds=3600) for n in (1, 2, 3, 6, 7, 50)] == [
        60,
        120,
        240,
        1920,
        3600,
        3600,
    ]


def test_totp_steps_and_replay() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = time.time()
    step = int(now // 30)
    assert totp_step(secret, totp.at(now), now=now, last_step=None) == step
    assert totp_step(secret, totp.at(now - 30), now=now, last_step=None) == step - 1
    assert totp_step(secret, totp.at(now + 30), now=now, last_step=None) == step + 1
    assert totp_step(secret, totp.at(now - 90), now=now, last_step=None) is None
    assert totp_step(secret, totp.at(now), now=now, last_step=step) is None  # used already
    assert totp_step(secret, totp.at(now + 30), now=now, last_step=step) == step + 1
    assert totp_step(secret, "12345", now=now, last_step=None) is None
    assert totp_step(secret, "abcdef", now=now, last_step=None) is None


def test_secret_box_binds_ciphertext_to_its_record() -> None:
    box = SecretBox(DEV_SECRETS_KEY)
    sealed = box.seal("sk_secret", context="api-key:ak_1")
    assert b"sk_secret" not in bytes(sealed["ct"])  # type: ignore[call-overload]
    assert box.open(sealed, context="api-key:ak_1") == "sk_secret"
    with pytest.raises(Exception):  # noqa: B017, PT011 - cryptography's InvalidTag
        box.open(sealed, context="api-key:ak_2")
    assert box.lookup_hash("x", purpose="id") == box.lookup_hash("x", purpose="id")
    assert box.lookup_hash("x", purpose="id") != box.lookup_hash("x", purpose="other")
