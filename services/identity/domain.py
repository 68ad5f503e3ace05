"""Pure rules of identity: what a valid email, mainland mobile number, password, real name and
resident ID number (GB 11643) are, how secrets are masked, how long a brute-force lock lasts,
which TOTP step a code belongs to, what refresh tokens and one-time codes look like, who may
manage an account's credentials. No I/O; unit-tested in tests/unit/test_identity_domain.py."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import date

import pyotp

from shared.auth import LEVELS, ROLES, Caller
from shared.errors import Problem, validation_problem

PASSWORD_MIN_LENGTH = 8
# argon2 hashes any length, but a megabyte password is a cheap way to burn our CPU.
PASSWORD_MAX_LENGTH = 128

# The most common leaked passwords of at least 8 characters (the shorter ones fail the length
# rule anyway), including the Chinese favourites. Compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "12345678",
        "123456789",
        "1234567890",
        "87654321",
        "11111111",
        "00000000",
        "88888888",
        "66666666",
        "11223344",
        "12341234",
        "123123123",
        "1qaz2wsx",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "qwertyui",
        "qwerty123",
        "qwertyuiop",
        "asdfghjkl",
        "zxcvbnm1",
        "password",
        "password1",
        "password123",
        "passw0rd",
        "p@ssw0rd",
        "iloveyou",
        "woaini1314",
        "woaini520",
        "5201314520",
        "a1234567",
        "a12345678",
        "aa123456",
        "abc12345",
        "abcd1234",
        "abcdefgh",
        "admin123",
        "admin1234",
        "administrator",
        "letmein1",
        "welcome1",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "superman",
        "trustno1",
        "dragon123",
        "monkey123",
        "changeme",
        "kameng123",
        "kameng2026",
    }
)

EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
EMAIL_MAX_LENGTH = 254
_EMAIL = re.compile(EMAIL_PATTERN)
# [0-9], not \d: Python's \d also matches other scripts' digits, which no SMS gateway dials.
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
MOBILE_PATTERN = r"^(?:\+86|0086)?1[3-9][0-9]{9}$"
"""What the document states; spaces and dashes inside are tolerated too (`normalize_phone`)."""
LOGIN_PATTERN = f"(?:{EMAIL_PATTERN})|(?:{MOBILE_PATTERN})"
_LETTER = "\u4e00-\u9fff\u3400-\u4dbfA-Za-z"
REAL_NAME_PATTERN = f"^[{_LETTER}][{_LETTER} ·.\\-]{{0,48}}[{_LETTER}]$"
_REAL_NAME = re.compile(REAL_NAME_PATTERN)

# GB 11643-1999: weights of the first 17 digits, and the check character for (sum mod 11).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Province-level codes (GB/T 2260 first two digits); 71/81/82 are Taiwan, Hong Kong, Macao.
_PROVINCES = frozenset(
    {
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    }
)
_OLDEST_BIRTH = date(1900, 1, 1)


def normalize_email(raw: str) -> str | None:
    """The canonical form (trimmed, lower-case) or None when it is not an email address."""
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        return None
    local, _, _ = email.partition("@")
    return email if len(local) <= 64 else None


def normalize_phone(raw: str) -> str | None:
    """A mainland mobile number as 11 digits (an optional +86 / 0086 prefix, spaces and dashes
    are accepted and dropped) or None."""
    digits = re.sub(r"[\s-]", "", raw.strip())
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits if _MOBILE.match(digits) else None


TOO_COMMON = "is too common"
SAME_AS_LOGIN = "must not be the same as the account name"
WEAK = frozenset({TOO_COMMON, SAME_AS_LOGIN})
"""Refusals of a password of the stated length: a deny-list and the other fields, not its form."""


def input_problem(errors: list[dict[str, str]]) -> Problem:
    """The 422 for these field errors: `weak-password` when a weak password is all that is wrong
    (its own slug: the document states a password's length, and no schema can state a deny-list),
    else `validation-error`."""
    if all(e["message"] in WEAK for e in errors):
        return Problem(422, "weak-password", "Weak password", "choose a less common password", errors=errors)
    return validation_problem(errors)


def password_problems(password: str, *, identifiers: tuple[str, ...] = ()) -> list[str]:
    """Why a password is refused; empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"must be at most {PASSWORD_MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or (len(set(password)) == 1 and password):
        problems.append(TOO_COMMON)
    for ident in identifiers:
        if ident and lowered == ident.lower():
            problems.append(SAME_AS_LOGIN)
    return problems


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


# The shape the document states: 17 digits and a check character, a province-level region code and
# a birth date of 19xx/20xx with a month and a day in range. What no pattern states is arithmetic:
# whether the date exists and has passed, and the GB 11643 check character (`id_number_check`).
ID_NUMBER_PATTERN = (
    r"^(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])[0-9]{4}"
    r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$"
)
_ID_NUMBER = re.compile(ID_NUMBER_PATTERN)


def id_number_problem(raw: str, *, today: date) -> str | None:
    """Why an 18-character resident ID number is not valid (None when it is)."""
    return id_number_form_problem(raw) or id_number_check(raw, today=today)


def id_number_form_problem(raw: str) -> str | None:
    """Why an ID number does not have the stated shape (None when it has)."""
    number = raw.strip().upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        return "must be 17 digits followed by a digit or X"
    if int(number[:2]) not in _PROVINCES:
        return "the region code is not valid"
    if not _ID_NUMBER.match(number):
        return "the birth date is not a real date"
    return None


def id_number_check(raw: str, *, today: date) -> str | None:
    """Why a well-shaped ID number is still not one (None when it is): its birth date does not
    exist or has not come, or its check character does not match (GB 11643)."""
    number = raw.strip().upper()
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "the birth date is not a real date"
    if not _OLDEST_BIRTH <= born <= today:
        return "the birth date is not plausible"
    if id_check_char(number[:17]) != number[17]:
        return "the check digit does not match (GB 11643)"
    return None


def normalize_id_number(raw: str) -> str:
    return raw.strip().upper()


def real_name_problem(raw: str) -> str | None:
    name = raw.strip()
    if not 2 <= len(name) <= 50 or not _REAL_NAME.match(name):
        return "must be 2 to 50 letters or Chinese characters"
    return None


def mask_id_number(number: str) -> str:
    """Keeps the province code and the last 4 characters: enough for the owner to recognise it."""
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[0] + "***" if local else "***") + "@" + domain


def is_level(value: str) -> bool:
    return value in LEVELS


def roles_problem(roles: list[str]) -> str | None:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        return f"unknown roles: {', '.join(unknown)} (allowed: {', '.join(ROLES)})"
    if not roles:
        return "at least one role is needed"
    return None


def lock_seconds(lock_number: int, *, base_seconds: int, max_seconds: int) -> int:
    """How long the n-th lock in a row lasts: doubling from `base_seconds`, capped."""
    return int(min(max_seconds, base_seconds * 2 ** max(0, min(lock_number - 1, 30))))


def totp_step(secret: str, code: str, *, now: float, last_step: int | None, window: int = 1) -> int | None:
    """The time step `code` is valid for (within ±`window` steps of now), or None. A step at or
    before `last_step` was already used: refused, so a code seen once cannot be replayed."""
    if not re.fullmatch(r"\d{6}", code or ""):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None
            return step
    return None


def normalize_login(raw: str) -> str:
    """The account a login names, in the form it is stored (and counted for lockout) under."""
    if "@" in raw:
        return normalize_email(raw) or raw.strip().lower()
    return normalize_phone(raw) or raw.strip()


def token_hash(token: str) -> str:
    """Refresh tokens are stored only as this digest: a database dump holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    """An opaque refresh token of 256 random bits."""
    return "rt_" + secrets.token_urlsafe(32)


def new_contact_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def wrong_code(message: str) -> Problem:
    """422 on `code`: a one-time code of the right form that is not the one sent (or has expired).
    Its own slug, apart from `validation-error`: the request is well formed, the code is not ours."""
    return Problem(422, "wrong-code", "Wrong code", f"code {message}", errors=[{"field": "code", "message": message}])


def field_error(field: str, message: str, detail: str | None = None) -> Problem:
    return Problem(
        422,
        "validation-error",
        "Invalid request",
        detail or f"{field} {message}",
        errors=[{"field": field, "message": message}],
    )


def account_owner_only(caller: Caller) -> None:
    """Partner API keys act for their user on the business API, but may not manage the
    account's own credentials (keys, 2FA, contacts, real name): a leaked key must not be able
    to lock the owner out or mint itself more keys."""
    if caller.via == "api_key":
        raise Problem(403, "not-for-api-keys", "Forbidden", "sign in as the account owner for this")
