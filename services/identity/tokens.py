"""Rotating refresh tokens. A token is opaque (256 random bits); only its SHA-256 is stored.
Every login starts a family; each refresh marks the presented token used and issues the next one
in the same family. Presenting a used (or revoked) token means it was stolen or replayed, so the
whole family is revoked: the thief and the victim both have to sign in again."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument

from services.identity.store import REFRESH_TOKENS
from shared.contracts.envelope import new_id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


async def store_refresh_token(
    db: AsyncIOMotorDatabase[Any],
    *,
    token: str,
    user_id: str,
    family_id: str | None,
    access_jti: str,
    ttl_seconds: int,
) -> None:
    now = datetime.now(UTC)
    await db[REFRESH_TOKENS].insert_one(
        {
            "_id": token_hash(token),
            "family_id": family_id or new_id(),
            "user_id": user_id,
            "access_jti": access_jti,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "used_at": None,
            "revoked_at": None,
        }
    )


class RefreshRejected(Exception):
    def __init__(self, reason: str, *, family_revoked: bool = False) -> None:
        super().__init__(reason)
        self.family_revoked = family_revoked


async def use_refresh_token(
    db: AsyncIOMotorDatabase[Any], token: str, *, on_family_revoked: Callable[[list[str]], Awaitable[None]]
) -> dict[str, Any]:
    """Mark the token used (atomically: of two concurrent refreshes only one wins) and return
    its record; RefreshRejected when unknown, expired, revoked or already used (then the family
    is revoked)."""
    now = datetime.now(UTC)
    coll = db[REFRESH_TOKENS]
    doc: dict[str, Any] | None = await coll.find_one_and_update(
        {"_id": token_hash(token), "used_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        return doc
    known: dict[str, Any] | None = await coll.find_one({"_id": token_hash(token)}, {"family_id": 1, "used_at": 1})
    if known is None:
        raise RefreshRejected("the refresh token is not valid")
    if known.get("used_at") is not None:
        await on_family_revoked(await revoke_family(db, known["family_id"]))
        raise RefreshRejected("the refresh token was already used; every session of it is revoked", family_revoked=True)
    raise RefreshRejected("the refresh token has expired or was revoked")


async def revoke_family(db: AsyncIOMotorDatabase[Any], family_id: str) -> list[str]:
    """Revoke every refresh token of the family; returns the `jti`s of the access tokens issued
    with them, so the caller can deny those at the gateway too."""
    await db[REFRESH_TOKENS].update_many(
        {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}}
    )
    docs = db[REFRESH_TOKENS].find({"family_id": family_id}, {"access_jti": 1})
    return [d["access_jti"] async for d in docs if d.get("access_jti")]


async def family_of_access_token(db: AsyncIOMotorDatabase[Any], jti: str) -> str | None:
    doc: dict[str, Any] | None = await db[REFRESH_TOKENS].find_one({"access_jti": jti}, {"family_id": 1})
    return doc["family_id"] if doc else None


async def family_of_refresh_token(db: AsyncIOMotorDatabase[Any], token: str) -> tuple[str, str] | None:
    doc: dict[str, Any] | None = await db[REFRESH_TOKENS].find_one(
        {"_id": token_hash(token)}, {"family_id": 1, "user_id": 1}
    )
    return (doc["family_id"], doc["user_id"]) if doc else None
