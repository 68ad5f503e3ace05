"""The fulfilment service's MongoDB collections and indexes (database `kameng_fulfilment`), and the
vault's queries: import, claim, reveal, disable, and the counts stock is rebuilt from.

    card_keys  one document per card key: the AES-GCM ciphertext (never the key), its HMAC
               fingerprint (unique: a key can enter the vault once, ever), status
               available -> sold | disabled, the order it went to, expiry
    imports    one per import request: who, when, how many accepted / duplicate / invalid
    skus       projection of catalog.sku-changed: what the vault needs of a SKU (validity, mode)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from motor.motor_asyncio import AsyncIOMotorClientSession, AsyncIOMotorDatabase
from pymongo.errors import BulkWriteError

from services.fulfilment.crypto import Sealed, Vault
from services.fulfilment.domain import ParsedBatch, expiry
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.fulfilment import KeyDisabled, KeysImported
from shared.inventory import OP_MARKER_TTL_SECONDS
from shared.messaging.outbox import Tx, UnitOfWork
from shared.mongo import Index

CARD_KEYS = "card_keys"
IMPORTS = "imports"
SKUS = "skus"

INDEXES: list[Index] = [
    Index(CARD_KEYS, [("fp", 1)], {"unique": True}),
    Index(CARD_KEYS, [("sku_id", 1), ("status", 1), ("expires_at", 1)]),
    Index(CARD_KEYS, [("order_id", 1)], {"sparse": True}),
    Index(IMPORTS, [("sku_id", 1), ("at", 1)]),
]

Db = AsyncIOMotorDatabase[Any]
Session = AsyncIOMotorClientSession | None

# How far back a rebuild marks supply changes as already counted: as long as the markers live.
OP_HORIZON = timedelta(seconds=OP_MARKER_TTL_SECONDS)
# Fingerprint look-ups per query: this database's $in is quadratic, small chunks stay fast.
_LOOKUP_CHUNK = 100
_MAX_IMPORT_ATTEMPTS = 5


def import_op(batch_id: str) -> str:
    return f"import:{batch_id}"


def claim_op(order_id: str) -> str:
    """The op id the order side uses for `Inventory.adjust_supply(sku, -claimed, claim_op(order))`."""
    return f"claim:{order_id}"


def disable_op(key_id: str) -> str:
    return f"disable:{key_id}"


def _usable(now: datetime) -> dict[str, Any]:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


async def count_available(db: Db, sku_id: str, now: datetime, session: Session = None) -> int:
    """Keys that can still be sold: available (not sold, not disabled) and not expired."""
    return int(
        await db[CARD_KEYS].count_documents({"sku_id": sku_id, "status": "available", **_usable(now)}, session=session)
    )


# -- the SKU projection -------------------------------------------------------------------------


async def get_sku(db: Db, sku_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await db[SKUS].find_one({"_id": sku_id})
    return doc


async def project_sku(db: Db, session: Session, sku: dict[str, Any]) -> bool:
    """Keep the highest revision; an older or repeated one changes nothing."""
    current = await db[SKUS].find_one({"_id": sku["_id"]}, {"revision": 1}, session=session)
    if current is not None and current["revision"] >= sku["revision"]:
        return False
    await db[SKUS].replace_one({"_id": sku["_id"]}, sku, upsert=True, session=session)
    return True


# -- import -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    batch_id: str | None
    accepted: int
    duplicates: list[dict[str, object]]
    invalid: list[dict[str, object]]
    available: int


async def _existing_fingerprints(db: Db, fingerprints: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(fingerprints), _LOOKUP_CHUNK):
        chunk = list(fingerprints[start : start + _LOOKUP_CHUNK])
        found.update([d["fp"] async for d in db[CARD_KEYS].find({"fp": {"$in": chunk}}, {"fp": 1, "_id": 0})])
    return found


async def import_keys(
    uow: UnitOfWork,
    vault: Vault,
    sku: dict[str, Any],
    batch: ParsedBatch,
    *,
    by: str,
    now: datetime,
    source: str,
) -> ImportReport:
    """Store the batch's keys all or nothing, skipping keys already in the vault.

    One transaction with one bulk insert: the database manages ~300 single inserts/s but tens of
    thousands of documents/s in bulk. Duplicates against the vault are found optimistically: the
    unique fingerprint index rejects them, the transaction rolls back (nothing was stored), and
    the insert is repeated without them. A concurrent import of the same keys is handled the same
    way: whichever commits first owns the key, the other reports it as a duplicate."""
    sku_id: str = sku["_id"]
    batch_id = new_id()
    expires_at = expiry(now, sku.get("validity_days"))
    # Encrypting 10,000 keys is a fraction of a second of CPU: off the event loop, so the
    # service keeps answering (health checks, other requests) meanwhile.
    docs = await asyncio.to_thread(_sealed_documents, vault, sku_id, batch, batch_id, now, expires_at)
    in_vault: set[str] = set()
    for attempt in range(1, _MAX_IMPORT_ATTEMPTS + 1):
        fresh = [d for d in docs if d["fp"] not in in_vault]
        dup_lines = [{"line": d["line"], "reason": "already in the vault"} for d in docs if d["fp"] in in_vault]
        duplicates = sorted([*batch.duplicate_lines, *dup_lines], key=lambda d: int(str(d["line"])))

        async def store(tx: Tx, fresh: list[dict[str, Any]] = fresh, duplicates: int = len(duplicates)) -> int:
            if fresh:
                await tx.db[CARD_KEYS].insert_many(fresh, ordered=False, session=tx.session)
            available = await count_available(tx.db, sku_id, now, tx.session)
            await tx.db[IMPORTS].insert_one(
                {
                    "_id": batch_id,
                    "sku_id": sku_id,
                    "accepted": len(fresh),
                    "duplicates": duplicates,
                    "invalid": len(batch.invalid),
                    "by": by,
                    "source": source,
                    "at": now,
                },
                session=tx.session,
            )
            if fresh:
                tx.emit(
                    KeysImported(
                        sku_id=sku_id,
                        batch_id=batch_id,
                        accepted=len(fresh),
                        available=available,
                        duplicates=duplicates,
                        invalid=len(batch.invalid),
                    )
                )
            return available

        if not fresh:
            # Nothing new (e.g. the same file again): store nothing, not even an import record.
            available = await count_available(uow.mongo.db, sku_id, now)
            return ImportReport(None, 0, duplicates, batch.invalid, available)
        try:
            available = await uow.run(store)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != 11000 or "fp" not in (e.get("keyPattern") or {}) for e in errors):
                raise
            in_vault.update(fresh[e["index"]]["fp"] for e in errors)
            if attempt >= 2:
                # A server that stops at the first error inside a transaction: look them all up.
                in_vault |= await _existing_fingerprints(uow.mongo.db, [d["fp"] for d in fresh])
            continue
        return ImportReport(batch_id, len(fresh), duplicates, batch.invalid, available)
    raise ImportConflict("the keys kept colliding with concurrent imports; retry the request")


class ImportConflict(Exception):
    pass


def _sealed_documents(
    vault: Vault, sku_id: str, batch: ParsedBatch, batch_id: str, now: datetime, expires_at: datetime | None
) -> list[dict[str, Any]]:
    docs = []
    for key in batch.keys:
        sealed = vault.seal(key.code, sku_id)
        docs.append(
            {
                "_id": new_id(),
                "sku_id": sku_id,
                "fp": vault.fingerprint(key.code),
                "kid": sealed.key_id,
                "nonce": Binary(sealed.nonce),
                "ct": Binary(sealed.ciphertext),
                "status": "available",
                "batch_id": batch_id,
                "line": key.line,
                "imported_at": now,
                "expires_at": expires_at,
            }
        )
    return docs


# -- claim and reveal (used by delivery) ----------------------------------------------------------


async def claim_keys(
    tx: Tx,
    sku_id: str,
    order_id: str,
    quantity: int,
    now: datetime | None = None,
    *,
    user_id: str | None = None,
) -> list[str]:
    """Inside the caller's unit of work: move up to `quantity` usable keys of the SKU to `sold` for
    this order and return their ids, soonest-expiring first. Fewer than `quantity` means the vault
    is short (refund the rest). Idempotent per (SKU, order): a repeat returns what the order got.

    The update is guarded (`status: available` in the filter), so two orders racing for the same
    key cannot both take it: the database serialises the two writes and the loser's filter no
    longer matches (or its transaction hits a write conflict and is retried by the unit of work).
    After a committed claim, take the keys out of supply:
    `stock.apply_supply(db, inventory, sku_id, -len(ids), claim_op(order_id))` (once per order, and a
    rebuild instead when Redis lost the counter)."""
    db, session = tx.db, tx.session
    now = now or utcnow()
    sold: dict[str, Any] = {"status": "sold", "order_id": order_id, "sold_at": now}
    if user_id is not None:
        sold["user_id"] = user_id  # lets reveal_keys check the owner on its own
    owned = [
        d["_id"]
        async for d in db[CARD_KEYS].find({"sku_id": sku_id, "order_id": order_id}, {"_id": 1}, session=session)
    ]
    if owned or quantity <= 0:
        return owned
    claimed: list[str] = []
    for _ in range(3):
        wanted = quantity - len(claimed)
        candidates = [
            d["_id"]
            async for d in db[CARD_KEYS]
            .find({"sku_id": sku_id, "status": "available", **_usable(now)}, {"_id": 1}, session=session)
            .sort([("expires_at", 1), ("_id", 1)])
            .limit(wanted)
        ]
        if not candidates:
            break
        await db[CARD_KEYS].update_many(
            {"_id": {"$in": candidates}, "status": "available"},
            {"$set": sold},
            session=session,
        )
        claimed = [
            d["_id"]
            async for d in db[CARD_KEYS].find({"sku_id": sku_id, "order_id": order_id}, {"_id": 1}, session=session)
        ]
        if len(claimed) >= quantity:
            break
    return claimed


async def reveal_keys(
    db: Db, vault: Vault, order_id: str, *, user_id: str | None = None
) -> list[tuple[str, datetime | None]]:
    """The decrypted keys an order received, soonest-expiring first. Only for its owner: pass
    `user_id` (recorded by `claim_keys(..., user_id=...)`) and another user's order reveals nothing."""
    query: dict[str, Any] = {"order_id": order_id, "status": "sold"}
    if user_id is not None:
        query["user_id"] = user_id
    cursor = db[CARD_KEYS].find(query).sort([("expires_at", 1), ("_id", 1)])
    return [
        (vault.open(Sealed(d["kid"], bytes(d["nonce"]), bytes(d["ct"])), d["sku_id"]), d.get("expires_at"))
        async for d in cursor
    ]


# -- disable ------------------------------------------------------------------------------------


async def disable_key(tx: Tx, sku_id: str, key_id: str, now: datetime) -> str | None:
    """available -> disabled. Returns the key's status before (None: no such key of this SKU)."""
    before = await tx.db[CARD_KEYS].find_one_and_update(
        {"_id": key_id, "sku_id": sku_id, "status": "available"},
        {"$set": {"status": "disabled", "disabled_at": now}},
        projection={"status": 1},
        session=tx.session,
    )
    if before is not None:
        return "available"
    doc = await tx.db[CARD_KEYS].find_one({"_id": key_id, "sku_id": sku_id}, {"status": 1}, session=tx.session)
    return None if doc is None else str(doc["status"])


async def disable_codes(
    tx: Tx, vault: Vault, sku_id: str, codes: list[str], now: datetime
) -> tuple[dict[str, list[int]], list[str]]:
    """Disable the SKU's keys with these codes (a supplier's void list), found by fingerprint.
    Returns the positions in `codes` per outcome (disabled, already_disabled, sold, not_found) and
    the ids of the keys this call disabled. A key disabled twice (here or concurrently) is taken
    out of supply once: the op id is per key."""
    fps = [vault.fingerprint(code.strip()) for code in codes]
    before: dict[str, dict[str, Any]] = {}
    for start in range(0, len(fps), _LOOKUP_CHUNK):
        chunk = fps[start : start + _LOOKUP_CHUNK]
        async for d in tx.db[CARD_KEYS].find(
            {"sku_id": sku_id, "fp": {"$in": chunk}}, {"fp": 1, "status": 1}, session=tx.session
        ):
            before[d["fp"]] = d
    targets = [d["_id"] for d in before.values() if d["status"] == "available"]
    newly: set[str] = set()
    if targets:
        await tx.db[CARD_KEYS].update_many(
            {"_id": {"$in": targets}, "status": "available"},
            {"$set": {"status": "disabled", "disabled_at": now}},
            session=tx.session,
        )
        newly = {
            d["_id"]
            async for d in tx.db[CARD_KEYS].find(
                {"_id": {"$in": targets}, "status": "disabled"}, {"_id": 1}, session=tx.session
            )
        }
    outcome: dict[str, list[int]] = {"disabled": [], "already_disabled": [], "sold": [], "not_found": []}
    counted: set[str] = set()
    for i, fp in enumerate(fps):
        doc = before.get(fp)
        if doc is None:
            outcome["not_found"].append(i)
        elif doc["_id"] in newly and doc["_id"] not in counted:
            counted.add(doc["_id"])
            outcome["disabled"].append(i)
            tx.emit(KeyDisabled(sku_id=sku_id, key_id=doc["_id"]))
        elif doc["status"] == "sold" or (doc["status"] == "available" and doc["_id"] not in newly):
            outcome["sold"].append(i)  # sold before, or claimed while this ran
        else:
            outcome["already_disabled"].append(i)
    return outcome, sorted(newly)


# -- stock --------------------------------------------------------------------------------------


async def vault_counts(db: Db, sku_id: str, now: datetime) -> dict[str, int]:
    counts = {"available": 0, "sold": 0, "disabled": 0, "expired": 0}
    async for row in db[CARD_KEYS].aggregate(
        [
            {"$match": {"sku_id": sku_id}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
    ):
        counts[str(row["_id"])] = int(row["n"])
    usable = await count_available(db, sku_id, now)
    counts["expired"] = counts["available"] - usable
    counts["available"] = usable
    return counts


async def supply_truth(db: Db, sku_id: str, now: datetime) -> tuple[int, list[str]]:
    """What a rebuild sets: the usable keys, and the supply changes (imports, claims, disables)
    that count already includes, read in one transaction so they describe the same moment."""
    since = now - OP_HORIZON
    async with await db.client.start_session() as session, session.start_transaction():
        available = await count_available(db, sku_id, now, session)
        ops = [
            import_op(d["_id"])
            async for d in db[IMPORTS].find({"sku_id": sku_id, "at": {"$gte": since}}, {"_id": 1}, session=session)
        ]
        orders: set[str] = set()
        async for d in db[CARD_KEYS].find(
            {
                "sku_id": sku_id,
                "status": {"$in": ["sold", "disabled"]},
                "$or": [{"sold_at": {"$gte": since}}, {"disabled_at": {"$gte": since}}],
            },
            {"order_id": 1, "status": 1},
            session=session,
        ):
            if d["status"] == "sold":
                orders.add(claim_op(d["order_id"]))
            else:
                ops.append(disable_op(d["_id"]))
        ops.extend(sorted(orders))
    return available, ops


async def vault_skus(db: Db) -> list[str]:
    """Every SKU that ever had keys imported (the ones with a supply counter to keep)."""
    return [str(s) for s in await db[IMPORTS].distinct("sku_id")]


async def list_keys(
    db: Db, sku_id: str, status: str | None, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    query: dict[str, Any] = {"sku_id": sku_id}
    if status:
        query["status"] = status
    total = await db[CARD_KEYS].count_documents(query)
    projection = {"ct": 0, "nonce": 0, "fp": 0}
    cursor = (
        db[CARD_KEYS]
        .find(query, projection)
        .sort([("imported_at", 1), ("line", 1)])
        .skip((page - 1) * page_size)
        .limit(page_size)
    )
    return [d async for d in cursor], int(total)
