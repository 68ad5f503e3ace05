"""Idempotency-Key inside a service: the one mechanism every creating endpoint uses.

The gateway answers repeats from Redis first (`services/gateway/store.py`), but Redis may
lose data and a service may be called twice anyway, so a service that creates something makes the
effect itself idempotent, durably, in its own database:

    key = idempotency_key(header)                       # None, or a validated key (422 if bad)
    fp = fingerprint(body)                              # what the request asked for
    ref = await records.recall(db, "topup", user, key, fp)   # earlier answer's id, or None;
    if ref is not None: return view_of(ref)             # 422 idempotency-key-reused for another body
    ... create, and in the same transaction: await records.remember(tx, "topup", user, key, fp, new_id)
    ... on DuplicateKeyError (a concurrent twin won): recall again.

A service that derives the created object's id from the key (`derived_id`, as orders do) gets the
same guarantee from the object's own unique `_id` and keeps the fingerprint on the object.

The problem for a reused key is one type everywhere: 422 `/problems/idempotency-key-reused`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar.params import HeaderParameter

from shared.errors import Problem, validation_problem
from shared.messaging.outbox import Tx
from shared.mongo import Index

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
"""The same bound at the edge (the gateway) and in every service."""
KEY_PATTERN = rf"^[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}$"
"""Printable ASCII (what an HTTP field value carries; a UUID or an order number fits)."""
_KEY = re.compile(KEY_PATTERN)
COLLECTION = "idempotency"
INDEXES = [Index(COLLECTION, [("at", 1)], {"expireAfterSeconds": 7 * 24 * 3600, "name": "idempotency_ttl"})]
"""Keys are kept a week: far longer than any client retries, short enough to stay small."""

IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        required=False,
        description="Send one per intended request to make retries safe",
        schema_extra={"pattern": KEY_PATTERN, "min_length": 1, "max_length": MAX_KEY_LENGTH},
    ),
]


KEY_RULE = f"1 to {MAX_KEY_LENGTH} printable ASCII characters"
"""The field message for a key that breaks `KEY_PATTERN`."""


def valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def invalid_key() -> Problem:
    return validation_problem([{"field": HEADER, "message": KEY_RULE}], f"{HEADER} must be {KEY_RULE}")


def key_reused() -> Problem:
    return Problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "this Idempotency-Key was used with a different request",
    )


def idempotency_key(raw: str | None) -> str | None:
    """The validated header value (None when absent): `KEY_PATTERN`, else 422."""
    if raw is None:
        return None
    if not valid_key(raw):
        raise invalid_key()
    return raw


def fingerprint(*parts: Any) -> str:
    """A stable digest of what a request asks for (bodies, uploaded bytes, path ids)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else msgspec.json.encode(part, order="sorted")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def derived_id(scope: str, owner: str, key: str, *, length: int = 32) -> str:
    """A deterministic id for the object a keyed request creates: a repeat finds the same id."""
    return hashlib.sha256(f"{scope}\n{owner}\n{key}".encode()).hexdigest()[:length]


def _record_id(scope: str, owner: str, key: str) -> str:
    return f"{scope}:{owner}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


async def recall(db: Any, scope: str, owner: str, key: str | None, fp: str, *, session: Any = None) -> str | None:
    """The id the first request with this key created, None if there was none (or no key).
    Raises 422 `idempotency-key-reused` when the key was used for a different request."""
    if key is None:
        return None
    seen = await db[COLLECTION].find_one({"_id": _record_id(scope, owner, key)}, session=session)
    if seen is None:
        return None
    if seen["fingerprint"] != fp:
        raise key_reused()
    return str(seen["ref"])


async def remember(tx: Tx, scope: str, owner: str, key: str | None, fp: str, ref: str) -> None:
    """Record, in the creating transaction, that this key made `ref`. A concurrent twin makes the
    insert raise DuplicateKeyError: the caller aborts and `recall`s the winner's answer."""
    if key is None:
        return
    await tx.db[COLLECTION].insert_one(
        {"_id": _record_id(scope, owner, key), "fingerprint": fp, "ref": ref, "at": datetime.now(UTC)},
        session=tx.session,
    )
