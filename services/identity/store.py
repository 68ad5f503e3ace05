"""The identity service's MongoDB collections and indexes (database `kameng_identity`).

users           one document per account: contacts, argon2id hash, roles, level, TOTP (sealed
                seed, last used step), real-name record (sealed name and ID number, keyed hash)
refresh_tokens  one per issued refresh token, `_id` = SHA-256 of the token; grouped in families
api_keys        partner keys: sealed secret (the gateway needs it to check HMAC signatures)
contact_codes   the pending one-time code per (user, channel), hashed
notifications   outgoing SMS/email messages (read by tests; support delivers them later)
"""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase

from shared.mongo import Index

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
API_KEYS = "api_keys"
CONTACT_CODES = "contact_codes"
NOTIFICATIONS = "notifications"

INDEXES: list[Index] = [
    # Sparse: an account may have only an email or only a phone.
    Index(USERS, [("email", 1)], {"unique": True, "sparse": True}),
    Index(USERS, [("phone", 1)], {"unique": True, "sparse": True}),
    # One ID number verifies one account.
    Index(USERS, [("real_name.id_hash", 1)], {"unique": True, "sparse": True}),
    Index(REFRESH_TOKENS, [("family_id", 1)]),
    Index(REFRESH_TOKENS, [("access_jti", 1)]),
    Index(REFRESH_TOKENS, [("expires_at", 1)], {"expireAfterSeconds": 0}),
    Index(API_KEYS, [("user_id", 1), ("created_at", 1)]),
    Index(CONTACT_CODES, [("expires_at", 1)], {"expireAfterSeconds": 0}),
    Index(NOTIFICATIONS, [("user_id", 1), ("created_at", 1)]),
]

USER_VIEW = {
    "email": 1,
    "phone": 1,
    "roles": 1,
    "level": 1,
    "totp.enabled": 1,
    "real_name.masked": 1,
    "real_name.verified_at": 1,
}


def login_filter(login: str) -> dict[str, str]:
    return {"email": login} if "@" in login else {"phone": login}


async def find_user(db: AsyncIOMotorDatabase[Any], user_id: str, projection: dict[str, int] | None = None) -> Any:
    return await db[USERS].find_one({"_id": user_id}, projection or USER_VIEW)
