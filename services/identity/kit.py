"""The per-process helpers identity's handlers share (built once from the Runtime), the base
controller that injects them, and small request helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from litestar import Controller, Request
from litestar.di import Provide
from motor.motor_asyncio import AsyncIOMotorDatabase

from services.identity.lockout import LoginGuard
from services.identity.passwords import Passwords
from services.identity.secrets import SecretBox
from services.identity.settings import IdentitySettings
from shared.auth import Caller
from shared.errors import Problem
from shared.runtime import Runtime


@dataclass
class Kit:
    runtime: Runtime
    settings: IdentitySettings
    box: SecretBox
    passwords: Passwords
    guard: LoginGuard

    @property
    def db(self) -> AsyncIOMotorDatabase[Any]:
        return self.runtime.mongo.db


_kits: dict[int, Kit] = {}


def kit_for(runtime: Runtime) -> Kit:
    kit = _kits.get(id(runtime))
    if kit is None:
        settings = cast(IdentitySettings, runtime.settings)
        kit = Kit(
            runtime=runtime,
            settings=settings,
            box=SecretBox(settings.identity_secrets_key.get_secret_value()),
            passwords=Passwords(settings),
            guard=LoginGuard(runtime.redis, settings),
        )
        _kits[id(runtime)] = kit
    return kit


def _provide_kit(runtime: Runtime) -> Kit:
    return kit_for(runtime)


class IdentityController(Controller):
    dependencies = {"kit": Provide(_provide_kit, sync_to_thread=False)}
    tags = ["identity"]


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The caller's address as the gateway saw it (it overwrites X-Forwarded-For; identity is
    reachable only from inside the platform)."""
    forwarded = request.headers.get("x-forwarded-for", "")
    first = forwarded.split(",")[0].strip()
    return first or (request.client.host if request.client else "unknown")


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
