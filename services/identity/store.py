"""The identity service's MongoDB collections, indexes and every query on them (database
`kameng_identity`), behind `IdentityStore`.

users           one document per account: contacts, argon2id hash, roles, level, TOTP (sealed
                seed, last used step), real-name record (sealed name and ID number, keyed hash)
refresh_tokens  one per issued refresh token, `_id` = SHA-256 of the token; grouped in families
api_keys        partner keys: sealed secret (the gateway needs it to check HMAC signatures)
contact_codes   the pending one-time code per (user, purpose: email, phone, reset), hashed
notifications   the delivery outbox of those codes: one record per SMS/email, written in the
                code's transaction, its parameters sealed (AES-GCM) until the delivery loop
                has sent it, then erased

Methods taking a `Tx` write inside the caller's transaction (with its session); the others are
single-document operations that are atomic on their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument

from shared.messaging.outbox import Tx
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
    Index(REFRESH_TOKENS, [("user_id", 1)]),
    Index(REFRESH_TOKENS, [("access_jti", 1)]),
    Index(REFRESH_TOKENS, [("expires_at", 1)], {"expireAfterSeconds": 0}),
    Index(API_KEYS, [("user_id", 1), ("created_at", 1)]),
    Index(CONTACT_CODES, [("expires_at", 1)], {"expireAfterSeconds": 0}),
    Index(NOTIFICATIONS, [("user_id", 1), ("created_at", 1)]),
    # The delivery loop's queue, and the per-address hourly count.
    Index(NOTIFICATIONS, [("status", 1), ("next_at", 1)]),
    Index(NOTIFICATIONS, [("to", 1), ("created_at", 1)]),
]

USER_VIEW = {
    "email": 1,
    "phone": 1,
    "roles": 1,
    "level": 1,
    "site": 1,
    "totp.enabled": 1,
    "real_name.masked": 1,
    "real_name.verified_at": 1,
}
"""What the account views (`/me`, the admin's view) show; never hashes or sealed secrets."""

Doc = dict[str, Any]


def login_filter(login: str) -> dict[str, str]:
    return {"email": login} if "@" in login else {"phone": login}


class IdentityStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    # -- accounts ---------------------------------------------------------------------------

    async def add_user(self, tx: Tx, doc: Doc) -> None:
        """DuplicateKeyError when the email or phone belongs to an account already."""
        await self.db[USERS].insert_one(doc, session=tx.session)

    async def email_registered(self, email: str) -> bool:
        return bool(await self.db[USERS].count_documents({"email": email}, limit=1))

    async def user_exists(self, user_id: str) -> bool:
        return bool(await self.db[USERS].count_documents({"_id": user_id}, limit=1))

    async def user_view(self, user_id: str) -> Doc | None:
        doc: Doc | None = await self.db[USERS].find_one({"_id": user_id}, USER_VIEW)
        return doc

    async def user_for_login(self, login: str) -> Doc | None:
        """The account a login names, with what signing in needs (hash, TOTP, token claims)."""
        doc: Doc | None = await self.db[USERS].find_one(
            login_filter(login), {"password_hash": 1, "roles": 1, "level": 1, "totp": 1}
        )
        return doc

    async def token_claims(self, user_id: str) -> Doc | None:
        """The account's roles and level, as a new token carries them."""
        doc: Doc | None = await self.db[USERS].find_one({"_id": user_id}, {"roles": 1, "level": 1})
        return doc

    async def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> None:
        # Guarded by the old hash: a password changed meanwhile is not overwritten.
        await self.db[USERS].update_one(
            {"_id": user_id, "password_hash": old_hash}, {"$set": {"password_hash": new_hash}}
        )

    async def contact_taken(self, channel: str, target: str, *, by_other_than: str) -> bool:
        return await self.db[USERS].find_one({channel: target, "_id": {"$ne": by_other_than}}, {"_id": 1}) is not None

    async def set_contact(self, tx: Tx, user_id: str, channel: str, target: str) -> None:
        """DuplicateKeyError when another account holds the contact."""
        await self.db[USERS].update_one({"_id": user_id}, {"$set": {channel: target}}, session=tx.session)

    async def set_real_name(self, tx: Tx, user_id: str, record: Doc) -> bool:
        """Attach the real-name record unless the account has one; False when it has (or the
        account does not exist). DuplicateKeyError when the ID number verified another account."""
        result = await self.db[USERS].update_one(
            {"_id": user_id, "real_name": {"$exists": False}}, {"$set": {"real_name": record}}, session=tx.session
        )
        return bool(result.matched_count)

    async def set_level(self, tx: Tx, user_id: str, level: str) -> Doc | None:
        """The account's view before the change, None when there is no such account."""
        return await self._set_and_return_before(tx, user_id, {"level": level})

    async def set_roles(self, tx: Tx, user_id: str, roles: list[str]) -> Doc | None:
        return await self._set_and_return_before(tx, user_id, {"roles": roles})

    async def _set_and_return_before(self, tx: Tx, user_id: str, fields: Doc) -> Doc | None:
        """The view before the change, with the document's `version` after it."""
        before: Doc | None = await self.db[USERS].find_one_and_update(
            {"_id": user_id},
            {"$set": fields, "$inc": {"version": 1}},
            projection={**USER_VIEW, "version": 1},
            session=tx.session,
        )
        if before is not None:
            before["version"] = int(before.get("version", 0)) + 1
        return before

    # -- two-factor -------------------------------------------------------------------------

    async def totp_state(self, user_id: str) -> Doc | None:
        """The account's TOTP record and pending secret (sealed), None without the account."""
        doc: Doc | None = await self.db[USERS].find_one({"_id": user_id}, {"totp": 1, "totp_pending": 1})
        return doc

    async def set_totp_pending(self, user_id: str, sealed: Doc) -> None:
        await self.db[USERS].update_one({"_id": user_id}, {"$set": {"totp_pending": sealed}})

    async def enable_totp(self, user_id: str, pending: Doc, step: int) -> bool:
        """Turn the pending secret on, unless it was replaced meanwhile (then False)."""
        result = await self.db[USERS].update_one(
            {"_id": user_id, "totp_pending": pending},
            {"$set": {"totp": {"enabled": True, "secret": pending, "last_step": step}}, "$unset": {"totp_pending": ""}},
        )
        return bool(result.modified_count)

    async def claim_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as the last used one if it is later than the last; False when it is not.
        Conditional, so a code is usable once even by two concurrent requests."""
        result = await self.db[USERS].update_one(
            # None or earlier than `step`, as `$not` of the later range: an `$or` here made the
            # embedded server scan every user (0.6 s at 60,000) before it used the `_id`.
            {"_id": user_id, "totp.last_step": {"$not": {"$gte": step}}},
            {"$set": {"totp.last_step": step}},
        )
        return result.modified_count == 1

    async def disable_totp(self, user_id: str) -> None:
        await self.db[USERS].update_one({"_id": user_id}, {"$unset": {"totp": ""}})

    # -- refresh tokens ---------------------------------------------------------------------

    async def add_refresh_token(self, doc: Doc) -> None:
        await self.db[REFRESH_TOKENS].insert_one(doc)

    async def use_refresh_token(self, digest: str, now: datetime) -> Doc | None:
        """Mark the token used and return its record, if it is unused, unrevoked and unexpired.
        One atomic update: of two concurrent refreshes with one token only one wins."""
        doc: Doc | None = await self.db[REFRESH_TOKENS].find_one_and_update(
            {"_id": digest, "used_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def refresh_token(self, digest: str) -> Doc | None:
        """The token's family, user and whether it was used, whatever its state."""
        doc: Doc | None = await self.db[REFRESH_TOKENS].find_one(
            {"_id": digest}, {"family_id": 1, "user_id": 1, "used_at": 1}
        )
        return doc

    async def family_of_access_token(self, jti: str) -> str | None:
        doc: Doc | None = await self.db[REFRESH_TOKENS].find_one({"access_jti": jti}, {"family_id": 1})
        return doc["family_id"] if doc else None

    async def revoke_family(self, family_id: str, now: datetime) -> list[str]:
        """Revoke every refresh token of the family; the `jti`s of the access tokens issued with
        them, so those can be denied at the gateway too."""
        await self.db[REFRESH_TOKENS].update_many(
            {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        docs = self.db[REFRESH_TOKENS].find({"family_id": family_id}, {"access_jti": 1})
        return [d["access_jti"] async for d in docs if d.get("access_jti")]

    # -- partner API keys -------------------------------------------------------------------

    async def count_active_keys(self, user_id: str) -> int:
        return int(await self.db[API_KEYS].count_documents({"user_id": user_id, "revoked_at": None}))

    async def add_api_key(self, tx: Tx, doc: Doc) -> None:
        await self.db[API_KEYS].insert_one(doc, session=tx.session)

    async def api_keys_of(self, user_id: str) -> list[Doc]:
        """The user's keys, oldest first, without their secrets."""
        cursor = self.db[API_KEYS].find({"user_id": user_id}, {"secret": 0}).sort("created_at", 1)
        return [d async for d in cursor]

    async def active_api_key(self, key_id: str) -> Doc | None:
        doc: Doc | None = await self.db[API_KEYS].find_one({"_id": key_id, "revoked_at": None})
        return doc

    async def revoke_api_key(self, tx: Tx, key_id: str, user_id: str, now: datetime) -> bool:
        """True when this call revoked the user's key (False: already revoked, or not theirs)."""
        result = await self.db[API_KEYS].update_one(
            {"_id": key_id, "user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": now}}, session=tx.session
        )
        return bool(result.modified_count)

    async def api_key_exists(self, tx: Tx, key_id: str, user_id: str) -> bool:
        return bool(await self.db[API_KEYS].count_documents({"_id": key_id, "user_id": user_id}, session=tx.session))

    # -- one-time contact codes and the notification outbox ---------------------------------

    async def contact_code(self, code_id: str) -> Doc | None:
        doc: Doc | None = await self.db[CONTACT_CODES].find_one({"_id": code_id})
        return doc

    async def save_contact_code(self, tx: Tx, code_id: str, doc: Doc) -> None:
        """Replace the pending code of this (user, channel), if any."""
        await self.db[CONTACT_CODES].replace_one({"_id": code_id}, doc, upsert=True, session=tx.session)

    async def count_code_attempt(self, code_id: str) -> None:
        await self.db[CONTACT_CODES].update_one({"_id": code_id}, {"$inc": {"attempts": 1}})

    async def drop_contact_code(self, code_id: str) -> None:
        await self.db[CONTACT_CODES].delete_one({"_id": code_id})

    async def consume_contact_code(self, tx: Tx, code_id: str, code_hash: str) -> bool:
        """Remove the code if it is still the one checked; False when it was used meanwhile."""
        removed = await self.db[CONTACT_CODES].delete_one({"_id": code_id, "code_hash": code_hash}, session=tx.session)
        return bool(removed.deleted_count)

    async def queue_notification(self, tx: Tx, doc: Doc) -> None:
        """The delivery outbox: the loop of usecases/delivery.py sends these after the commit, so
        a crash between storing a code and sending it loses nothing."""
        await self.db[NOTIFICATIONS].insert_one(doc, session=tx.session)

    async def codes_sent_since(self, to: str, since: datetime) -> int:
        """How many codes went (or are going) to this address since `since`."""
        return int(await self.db[NOTIFICATIONS].count_documents({"to": to, "created_at": {"$gte": since}}))

    async def claim_due_notification(self, now: datetime, lease_until: datetime) -> Doc | None:
        """The oldest message due for sending, pushed to `lease_until` so no other replica takes it
        while this one sends (at-least-once: a sender that dies leaves it due again). Looked
        for with a read first: the loop polls, and an idle poll should not cost a write."""
        due = {"status": "pending", "next_at": {"$lte": now}}
        if await self.db[NOTIFICATIONS].find_one(due, {"_id": 1}) is None:
            return None
        doc: Doc | None = await self.db[NOTIFICATIONS].find_one_and_update(
            due,
            {"$set": {"next_at": lease_until}},
            sort=[("next_at", 1)],
        )
        return doc

    async def notification_done(self, notification_id: str, status: str, now: datetime) -> None:
        """Sent, or given up (`expired`, `failed`): its sealed parameters are erased either way."""
        await self.db[NOTIFICATIONS].update_one(
            {"_id": notification_id},
            {"$set": {"status": status, "done_at": now}, "$unset": {"sealed": "", "next_at": ""}},
        )

    async def notification_retry(self, notification_id: str, attempts: int, next_at: datetime, error: str) -> None:
        await self.db[NOTIFICATIONS].update_one(
            {"_id": notification_id}, {"$set": {"attempts": attempts, "next_at": next_at, "error": error}}
        )

    # -- password reset ---------------------------------------------------------------------

    async def user_for_reset(self, login: str) -> Doc | None:
        doc: Doc | None = await self.db[USERS].find_one(login_filter(login), {"_id": 1})
        return doc

    async def set_password_hash(self, tx: Tx, user_id: str, new_hash: str) -> None:
        await self.db[USERS].update_one(
            {"_id": user_id}, {"$set": {"password_hash": new_hash}, "$inc": {"version": 1}}, session=tx.session
        )

    async def revoke_families_of_user(self, user_id: str, now: datetime) -> list[str]:
        """Revoke every refresh token of the account; the `jti`s of the access tokens issued with
        them (to deny at the gateway)."""
        await self.db[REFRESH_TOKENS].update_many(
            {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        docs = self.db[REFRESH_TOKENS].find({"user_id": user_id, "expires_at": {"$gt": now}}, {"access_jti": 1})
        return [d["access_jti"] async for d in docs if d.get("access_jti")]
