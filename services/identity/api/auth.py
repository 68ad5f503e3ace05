"""Register, log in, refresh, log out, reset a forgotten password (`/api/v1/auth/...`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import Body, JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import (
    LoginRequest,
    LogoutRequest,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    TokenPair,
)
from services.identity.usecases import auth, reset
from shared.auth import Caller
from shared.sites import normalise_slug


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The caller's address as the gateway saw it (it overwrites X-Forwarded-For; identity is
    reachable only from inside the platform)."""
    forwarded = request.headers.get("x-forwarded-for", "")
    first = forwarded.split(",")[0].strip()
    return first or (request.client.host if request.client else "unknown")


def _pair(tokens: auth.Tokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type="Bearer",  # noqa: S106
        expires_in=tokens.expires_in,
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["identity"]

    @post("/register", status_code=201, summary="Create an account with an email or a mainland mobile number")
    async def register(
        self, deps: IdentityDeps, request: Request[Any, Any, Any], data: JSONBody[RegisterRequest]
    ) -> Registered:
        # Signed up through a sub-site (its pages send X-Kameng-Site): the buyer belongs to it.
        site = normalise_slug(request.headers.get("x-kameng-site"))
        user_id = await auth.register(deps, email=data.email, phone=data.phone, password=data.password, site=site)
        return Registered(user_id=user_id)

    @post("/login", status_code=200, summary="Sign in: a short-lived access token and a rotating refresh token")
    async def login(
        self, deps: IdentityDeps, request: Request[Any, Any, Any], data: JSONBody[LoginRequest]
    ) -> TokenPair:
        tokens = await auth.login(
            deps, login=data.login, password=data.password, totp_code=data.totp_code, ip=client_ip(request)
        )
        return _pair(tokens)

    @post("/refresh", status_code=200, summary="Exchange a refresh token for a new pair (the old one is used up)")
    async def refresh(self, deps: IdentityDeps, data: JSONBody[RefreshRequest]) -> TokenPair:
        return _pair(await auth.refresh(deps, data.refresh_token))

    @post(
        "/password-reset",
        status_code=202,
        summary="Forgot the password: sends a one-time code to the account's email or phone",
        description="Always 202, whether or not the login names an account (no account enumeration).",
    )
    async def password_reset(self, deps: IdentityDeps, data: JSONBody[PasswordResetRequest]) -> PasswordResetAccepted:
        await reset.request_reset(deps, data.login)
        return PasswordResetAccepted(
            detail="if this login belongs to an account, a code was sent to it",
            expires_in=deps.settings.contact_code_ttl_seconds,
        )

    @post("/password-reset/confirm", status_code=204, summary="Set a new password with the code; ends every session")
    async def password_reset_confirm(self, deps: IdentityDeps, data: JSONBody[PasswordResetConfirm]) -> None:
        await reset.confirm_reset(deps, data.login, data.code, data.new_password)

    @post("/logout", status_code=204, summary="Sign out: revokes the session's refresh tokens and this access token")
    async def logout(self, deps: IdentityDeps, caller: Caller, data: LogoutRequest | None = Body(default=None)) -> None:
        await auth.logout(deps, caller, data.refresh_token if data is not None else None)
