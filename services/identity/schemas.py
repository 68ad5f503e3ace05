"""Request and response bodies of identity's public API (msgspec; they are the OpenAPI schemas),
and the views of stored accounts and keys the controllers answer with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from services.identity.domain import (
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    ID_NUMBER_PATTERN,
    LOGIN_PATTERN,
    MOBILE_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    REAL_NAME_PATTERN,
)
from shared.strict_bodies import any_of_required, documented

# The rules the use cases check, stated in the document (shared.strict_bodies.documented).
Email = Annotated[str, documented(pattern=EMAIL_PATTERN, max_length=EMAIL_MAX_LENGTH)]
Mobile = Annotated[str, documented(pattern=MOBILE_PATTERN)]
Login = Annotated[str, documented(pattern=LOGIN_PATTERN, max_length=EMAIL_MAX_LENGTH)]
NewPassword = Annotated[str, documented(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
KeyName = Annotated[str, documented(pattern=r"^\s*\S[\s\S]*$", max_length=64)]


class RegisterRequest(msgspec.Struct, kw_only=True):
    password: NewPassword
    email: Email | None = None
    phone: Mobile | None = None

    __openapi_any_of__ = any_of_required("email", "phone")


class Registered(msgspec.Struct, kw_only=True):
    user_id: str


class LoginRequest(msgspec.Struct, kw_only=True):
    login: str
    password: str
    totp_code: str | None = None


class RefreshRequest(msgspec.Struct, kw_only=True):
    refresh_token: str


class PasswordResetRequest(msgspec.Struct, kw_only=True):
    login: Login


class PasswordResetAccepted(msgspec.Struct, kw_only=True):
    """The same answer whether or not the login names an account."""

    detail: str
    expires_in: int


class PasswordResetConfirm(msgspec.Struct, kw_only=True):
    login: Login
    code: str
    new_password: NewPassword


class LogoutRequest(msgspec.Struct, kw_only=True):
    refresh_token: str | None = None


class TokenPair(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class Me(msgspec.Struct, kw_only=True):
    user_id: str
    email: str | None
    phone: str | None
    level: str
    roles: list[str]
    real_name_verified: bool
    totp_enabled: bool
    id_number_masked: str | None = None
    site: str | None = None
    """The sub-site (slug) the account signed up on."""


class RealNameRequest(msgspec.Struct, kw_only=True):
    name: Annotated[str, documented(pattern=REAL_NAME_PATTERN)]
    id_number: Annotated[str, documented(pattern=ID_NUMBER_PATTERN)]


class RealNameResult(msgspec.Struct, kw_only=True):
    real_name_verified: bool
    id_number_masked: str


class TotpSetup(msgspec.Struct, kw_only=True):
    secret: str
    otpauth_uri: str


class CodeRequest(msgspec.Struct, kw_only=True):
    code: str


class TotpState(msgspec.Struct, kw_only=True):
    totp_enabled: bool


class EmailRequest(msgspec.Struct, kw_only=True):
    email: Email


class PhoneRequest(msgspec.Struct, kw_only=True):
    phone: Mobile


class CodeSent(msgspec.Struct, kw_only=True):
    sent_to: str
    expires_in: int


class ApiKeyRequest(msgspec.Struct, kw_only=True):
    name: KeyName


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    key_id: str
    secret: str
    name: str
    created_at: str


class ApiKeyView(msgspec.Struct, kw_only=True):
    key_id: str
    name: str
    created_at: str
    revoked: bool
    revoked_at: str | None = None


class LevelRequest(msgspec.Struct, kw_only=True):
    level: str


class RolesRequest(msgspec.Struct, kw_only=True):
    roles: list[str]


class UserAdminView(msgspec.Struct, kw_only=True):
    user_id: str
    email: str | None
    phone: str | None
    level: str
    roles: list[str]
    real_name_verified: bool
    totp_enabled: bool


# Views of stored documents, shaped by the controllers.


def _account(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": user["_id"],
        "email": user.get("email"),
        "phone": user.get("phone"),
        "level": user.get("level", "retail"),
        "roles": list(user.get("roles", [])),
        "real_name_verified": bool((user.get("real_name") or {}).get("verified_at")),
        "totp_enabled": bool((user.get("totp") or {}).get("enabled")),
    }


def me_view(user: dict[str, Any]) -> Me:
    return Me(**_account(user), id_number_masked=(user.get("real_name") or {}).get("masked"), site=user.get("site"))


def admin_view(user: dict[str, Any]) -> UserAdminView:
    return UserAdminView(**_account(user))


def api_key_view(key: dict[str, Any]) -> ApiKeyView:
    revoked_at = key.get("revoked_at")
    return ApiKeyView(
        key_id=key["_id"],
        name=key["name"],
        created_at=key["created_at"].isoformat(),
        revoked=revoked_at is not None,
        revoked_at=revoked_at.isoformat() if revoked_at else None,
    )
