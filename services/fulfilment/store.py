"""Every MongoDB call of the fulfilment service (database `kameng_fulfilment`): collections,
indexes, the vault's queries (import, claim, reveal, disable, the counts stock is rebuilt from),
deliveries, the manual queue and the reveal log. Status changes are guarded updates built from the
transition tables in `domain.py`.

    card_keys     one document per card key: the AES-GCM ciphertext (never the key), its HMAC
                  fingerprint (unique: a key can enter the vault once, ever), status
                  (`domain.CARD_KEY`), the order it went to, expiry
    imports       one per batch of keys (an import request or job): who, when, how many accepted /
                  duplicate / invalid; a disabled batch's disable time and its pending supply change
    import_jobs   large imports run in the background (`domain.IMPORT_JOB`): progress, lease, report
    import_uploads  the uploaded file of a job in 256 KiB chunks (deleted when the job ends)
    skus          projection of catalog.sku-changed: what the vault needs of a SKU (validity, mode)
    deliveries    one per paid order (`_id` = order id), status `domain.DELIVERY`
    manual_tasks  the staff queue of manual deliveries, status `domain.MANUAL_TASK`
    reveals       who saw an order's keys, when and how (never the codes)

`FulfilmentStore(db)` is what use cases get (through `FulfilmentDeps`); the module functions
underneath it take the database or the transaction directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from motor.motor_asyncio import AsyncIOMotorClientSession, AsyncIOMotorDatabase
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.fulfilment.crypto import Sealed, Vault
from services.fulfilment.domain import (
    CARD_KEY,
    DELIVERY,
    IMPORT_JOB,
    MANUAL_TASK,
    UNSETTLED_JOBS,
    DeliveryStatus,
    ImportStatus,
    KeyStatus,
    ParsedBatch,
    TaskStatus,
    expiry,
)
from shared import idempotency
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.fulfilment import KeyDisabled, KeysImported
from shared.inventory import OP_MARKER_TTL_SECONDS
from shared.messaging.outbox import Tx, UnitOfWork
from shared.mongo import Index

CARD_KEYS = "card_keys"
IMPORTS = "imports"
SKUS = "skus"
DELIVERIES = "deliveries"
MANUAL_TASKS = "manual_tasks"
REVEALS = "reveals"
IMPORT_JOBS = "import_jobs"
UPLOADS = "import_uploads"

INDEXES: list[Index] = [
    Index(CARD_KEYS, [("fp", 1)], {"unique": True}),
    Index(CARD_KEYS, [("sku_id", 1), ("status", 1), ("expires_at", 1)]),
    Index(CARD_KEYS, [("order_id", 1)], {"sparse": True}),
    # The expiry-reminder sweep: sold keys by expiry (only sold ones are in this index).
    Index(CARD_KEYS, [("expires_at", 1)], {"partialFilterExpression": {"status": "sold"}, "name": "sold_by_expiry"}),
    Index(CARD_KEYS, [("batch_id", 1), ("status", 1)]),
    Index(IMPORTS, [("sku_id", 1), ("at", 1)]),
    Index(IMPORTS, [("supply_pending", 1)], {"sparse": True}),
    Index(IMPORT_JOBS, [("status", 1), ("lease_until", 1)]),
    Index(IMPORT_JOBS, [("sku_id", 1), ("status", 1)]),
    Index(UPLOADS, [("upload_id", 1), ("n", 1)]),
    Index(DELIVERIES, [("mode", 1), ("status", 1), ("next_attempt_at", 1)]),
    Index(DELIVERIES, [("mode", 1), ("status", 1), ("poll_at", 1)]),
    Index(DELIVERIES, [("request_id", 1)], {"sparse": True}),
    # The expiry-reminder sweep for reusable keys (only their deliveries carry `key_expires_at`).
    Index(DELIVERIES, [("key_expires_at", 1)], {"sparse": True}),
    Index(MANUAL_TASKS, [("status", 1), ("urged", -1), ("created_at", 1)]),
    Index(REVEALS, [("order_id", 1), ("at", -1)]),
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


def disable_batch_op(batch_id: str) -> str:
    return f"disable-batch:{batch_id}"


def claim_op(order_id: str) -> str:
    """The op id the order side uses for `Inventory.adjust_supply(sku, -claimed, claim_op(order))`."""
    return f"claim:{order_id}"


def disable_op(key_id: str) -> str:
    return f"disable:{key_id}"


def _usable(now: datetime) -> dict[str, Any]:
    """Not expired: no expiry (missing or null) or one after `now`. Written as `$not` of the
    expired range rather than an `$or` of the two cases: the same keys, but the embedded server
    answers an `$or` by scanning the whole collection (0.67 s at 60,000 keys against 2 ms)."""
    return {"expires_at": {"$not": {"$lte": now}}}


async def unsettled_batches(db: Db, sku_id: str, session: Session = None) -> list[str]:
    """The batches of the SKU's import jobs still queued or running. A job writes its keys
    `available` once, chunk by chunk; they are not for sale until the job succeeds, all at once:
    the job's status is the switch, not a second write of every key (Decision 29)."""
    return [
        str(d["batch_id"])
        async for d in db[IMPORT_JOBS].find(
            {"sku_id": sku_id, "status": {"$in": UNSETTLED_JOBS}}, {"batch_id": 1}, session=session
        )
    ]


async def in_vault(db: Db, sku_id: str, session: Session = None) -> dict[str, Any]:
    """The filter of the SKU's keys that exist for everyone but their import job: every key but
    those of an unsettled batch (the common case, no job under way, is the plain SKU filter)."""
    query: dict[str, Any] = {"sku_id": sku_id}
    pending = await unsettled_batches(db, sku_id, session)
    if pending:
        query["batch_id"] = {"$nin": pending}
    return query


async def sellable(db: Db, sku_id: str, now: datetime, session: Session = None) -> dict[str, Any]:
    """The filter of the keys that can be sold now: available (not sold, not disabled), not
    expired, and not in the batch of an import job still under way."""
    return {**await in_vault(db, sku_id, session), "status": "available", **_usable(now)}


async def count_available(db: Db, sku_id: str, now: datetime, session: Session = None) -> int:
    """Keys that can still be sold (`sellable`)."""
    return int(await db[CARD_KEYS].count_documents(await sellable(db, sku_id, now, session), session=session))


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
    `usecases.stock.apply_supply(store, inventory, sku_id, -len(ids), claim_op(order_id))` (once per order, and a
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
    query = await sellable(db, sku_id, now, session)  # one read of the unsettled jobs, not one per round
    for _ in range(3):
        wanted = quantity - len(claimed)
        candidates = [
            d["_id"]
            async for d in db[CARD_KEYS]
            .find(query, {"_id": 1}, session=session)
            .sort([("expires_at", 1), ("_id", 1)])
            .limit(wanted)
        ]
        if not candidates:
            break
        taken = await db[CARD_KEYS].update_many(
            {"_id": {"$in": candidates}, **CARD_KEY.guard(KeyStatus.SOLD)},
            {"$set": sold},
            session=session,
        )
        if taken.modified_count == len(candidates):
            # Every candidate was still available and is now this order's (the guard let no
            # other through): no need to read back what the order holds (one read per order).
            claimed += candidates
            if len(claimed) >= quantity:
                break
            continue
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


async def release_keys(tx: Tx, key_ids: list[str], claim_id: str) -> None:
    """Put back keys a short claim took (same transaction): sold -> available, owner cleared."""
    if not key_ids:
        return
    await tx.db[CARD_KEYS].update_many(
        {"_id": {"$in": key_ids}, "order_id": claim_id, **CARD_KEY.guard(KeyStatus.AVAILABLE)},
        {"$set": {"status": "available"}, "$unset": {"order_id": "", "sold_at": "", "user_id": ""}},
        session=tx.session,
    )


async def mark_disputed(tx: Tx, claim_ids: list[str], ticket_id: str) -> None:
    """The keys of these claims were judged bad after a ticket: kept (for the supplier claim), marked."""
    await tx.db[CARD_KEYS].update_many(
        {"order_id": {"$in": claim_ids}, "disputed": {"$ne": True}},
        {"$set": {"disputed": True, "disputed_by_ticket": ticket_id}},
        session=tx.session,
    )


# -- disable ------------------------------------------------------------------------------------


async def disable_key(tx: Tx, sku_id: str, key_id: str, now: datetime) -> str | None:
    """available -> disabled. Returns the key's status before (None: no such key of this SKU)."""
    scope = await in_vault(tx.db, sku_id, tx.session)  # read once: both look-ups below use it
    before = await tx.db[CARD_KEYS].find_one_and_update(
        {**scope, "_id": key_id, **CARD_KEY.guard(KeyStatus.DISABLED)},
        {"$set": {"status": "disabled", "disabled_at": now}},
        projection={"status": 1},
        session=tx.session,
    )
    if before is not None:
        return "available"
    doc = await tx.db[CARD_KEYS].find_one({**scope, "_id": key_id}, {"status": 1}, session=tx.session)
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
    scope = await in_vault(tx.db, sku_id, tx.session)  # a running job's keys are not found yet
    for start in range(0, len(fps), _LOOKUP_CHUNK):
        chunk = fps[start : start + _LOOKUP_CHUNK]
        async for d in tx.db[CARD_KEYS].find(
            {**scope, "fp": {"$in": chunk}}, {"fp": 1, "status": 1}, session=tx.session
        ):
            before[d["fp"]] = d
    targets = [d["_id"] for d in before.values() if d["status"] == "available"]
    newly: set[str] = set()
    if targets:
        await tx.db[CARD_KEYS].update_many(
            {"_id": {"$in": targets}, **CARD_KEY.guard(KeyStatus.DISABLED)},
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
            {"$match": await in_vault(db, sku_id)},
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
        ops += [
            disable_batch_op(d["_id"])
            async for d in db[IMPORTS].find(
                {"sku_id": sku_id, "disabled_at": {"$gte": since}}, {"_id": 1}, session=session
            )
        ]
        orders: set[str] = set()
        # Sold or disabled within the horizon: two indexed reads, not one `$or`, which the
        # embedded server answers by scanning every key of every SKU (seconds at 100,000 keys).
        changed: dict[Any, dict[str, Any]] = {}
        for when in ("sold_at", "disabled_at"):
            async for d in db[CARD_KEYS].find(
                {
                    "sku_id": sku_id,
                    "status": {"$in": ["sold", "disabled"]},
                    when: {"$gte": since},
                    "batch_disabled": {"$ne": True},  # counted by their batch's op
                },
                {"order_id": 1, "status": 1},
                session=session,
            ):
                changed[d["_id"]] = d
        for d in changed.values():
            if d["status"] == "sold":
                orders.add(claim_op(d["order_id"]))
            else:
                ops.append(disable_op(d["_id"]))
        ops.extend(sorted(orders))
    return available, ops


async def vault_skus(db: Db) -> list[str]:
    """Every SKU that ever had keys imported (the ones with a supply counter to keep)."""
    return [str(s) for s in await db[IMPORTS].distinct("sku_id")]


async def list_keys(db: Db, sku_id: str, status: str | None, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    query = await in_vault(db, sku_id)
    if status:
        query["status"] = status
    total = await db[CARD_KEYS].count_documents(query)
    projection = {"ct": 0, "nonce": 0, "fp": 0}
    cursor = db[CARD_KEYS].find(query, projection).sort([("imported_at", 1), ("line", 1)]).skip(skip).limit(limit)
    return [d async for d in cursor], int(total)


# -- import jobs ----------------------------------------------------------------------------------


class LeaseLost(RuntimeError):
    """Another worker holds the job now (this one was too slow to renew its lease)."""


def sealed_keys(
    vault: Vault,
    sku_id: str,
    keys: list[tuple[int, str]],
    batch_id: str,
    now: datetime,
    expires_at: datetime | None,
) -> list[dict[str, Any]]:
    """Documents of a job's keys: `available`, but held back from sale while their job is unsettled
    (`sellable`), and holding their unique fingerprint from the start. Their ids come from the
    batch and the line, so a chunk written twice could not hold a key twice (it is written in one
    transaction with the job's progress anyway)."""
    docs = []
    for line, code in keys:
        sealed = vault.seal(code, sku_id)
        docs.append(
            {
                "_id": f"{batch_id}.{line}",
                "sku_id": sku_id,
                "fp": vault.fingerprint(code),
                "kid": sealed.key_id,
                "nonce": Binary(sealed.nonce),
                "ct": Binary(sealed.ciphertext),
                "status": KeyStatus.AVAILABLE.value,
                "batch_id": batch_id,
                "line": line,
                "imported_at": now,
                "expires_at": expires_at,
            }
        )
    return docs


def _fp_duplicates(exc: BulkWriteError, docs: list[dict[str, Any]]) -> set[str]:
    """The fingerprints the unique index refused; anything else is re-raised by the caller."""
    errors = exc.details.get("writeErrors", [])
    if not errors or any(e.get("code") != 11000 or "fp" not in (e.get("keyPattern") or {}) for e in errors):
        raise exc
    return {docs[e["index"]]["fp"] for e in errors}


class ImportJobStore:
    """The jobs of large imports, their uploaded files and their batches' keys."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def save_chunk(self, upload_id: str, n: int, data: bytes) -> None:
        await self.db[UPLOADS].insert_one(
            {"_id": f"{upload_id}:{n:06d}", "upload_id": upload_id, "n": n, "data": Binary(data)}
        )

    async def chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        """The uploaded file, chunk by chunk (a few in memory at a time)."""
        cursor = self.db[UPLOADS].find({"upload_id": upload_id}, {"data": 1}).sort("n", 1).batch_size(4)
        async for d in cursor:
            yield bytes(d["data"])

    async def drop_upload(self, upload_id: str) -> None:
        await self.db[UPLOADS].delete_many({"upload_id": upload_id})

    async def recall(self, owner: str, key: str | None, fp: str) -> str | None:
        return await idempotency.recall(self.db, "card-key-import", owner, key, fp)

    async def create(self, tx: Tx, doc: dict[str, Any], key: str | None, fp: str) -> None:
        """The job and its Idempotency-Key record together; DuplicateKeyError: a twin won."""
        await tx.db[IMPORT_JOBS].insert_one(doc, session=tx.session)
        await idempotency.remember(tx, "card-key-import", doc["by"], key, fp, doc["_id"])

    async def get(self, job_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.db[IMPORT_JOBS].find_one({"_id": job_id}, {"owner": 0})
        return doc

    async def claim(self, owner: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """A queued job, or a running one whose worker stopped renewing its lease (it died).
        Looked for with a read first: the loop polls, and an idle poll should not cost a write."""
        claimable = {**IMPORT_JOB.guard(ImportStatus.RUNNING), "lease_until": {"$lt": now}}
        if await self.db[IMPORT_JOBS].find_one(claimable, {"_id": 1}) is None:
            return None
        doc: dict[str, Any] | None = await self.db[IMPORT_JOBS].find_one_and_update(
            claimable,
            {"$set": {"status": ImportStatus.RUNNING.value, "owner": owner, "lease_until": now + lease}},
            sort=[("created_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def update(self, job_id: str, owner: str, fields: dict[str, Any]) -> None:
        """Fields of a job this worker holds (LeaseLost when it no longer does)."""
        r = await self.db[IMPORT_JOBS].update_one(
            {"_id": job_id, "owner": owner, "status": ImportStatus.RUNNING.value}, {"$set": fields}
        )
        if r.matched_count == 0:
            raise LeaseLost(job_id)

    async def stage(
        self,
        uow: UnitOfWork,
        job_id: str,
        owner: str,
        docs: list[dict[str, Any]],
        progress: dict[str, Any],
        repeats: int = 0,
    ) -> tuple[int, int]:
        """Insert a chunk of the job's keys and advance the job's progress in one transaction, so a
        restart resumes after the last committed chunk: no key twice, none lost. Keys already in
        the vault are refused by the unique fingerprint and counted as duplicates, with the
        chunk's `repeats` (lines repeating an earlier line of the file). Returns (accepted, duplicates)."""
        in_vault: set[str] = set()
        for attempt in range(1, _MAX_IMPORT_ATTEMPTS + 1):
            fresh = [d for d in docs if d["fp"] not in in_vault]

            async def write(tx: Tx, fresh: list[dict[str, Any]] = fresh) -> None:
                if fresh:
                    await tx.db[CARD_KEYS].insert_many(fresh, ordered=False, session=tx.session)
                r = await tx.db[IMPORT_JOBS].update_one(
                    {"_id": job_id, "owner": owner, "status": ImportStatus.RUNNING.value},
                    {
                        "$set": progress,
                        "$inc": {"accepted": len(fresh), "duplicates": len(docs) - len(fresh) + repeats},
                    },
                    session=tx.session,
                )
                if r.matched_count == 0:
                    raise LeaseLost(job_id)

            try:
                await uow.run(write)
            except BulkWriteError as exc:
                in_vault |= _fp_duplicates(exc, fresh)
                if attempt >= 2:
                    in_vault |= await _existing_fingerprints(self.db, [d["fp"] for d in fresh])
                continue
            return len(fresh), len(docs) - len(fresh)
        raise ImportConflict("the vault kept changing under this import; try again")

    async def release_batch(self, batch_id: str) -> None:
        """An unsettled job's keys: gone (they were never sellable, nor found by a disable). The
        keys of a job that succeeded are never touched here."""
        if await self.db[IMPORT_JOBS].find_one({"batch_id": batch_id, "status": {"$in": UNSETTLED_JOBS}}) is None:
            return
        await self.db[CARD_KEYS].delete_many({"batch_id": batch_id})

    async def finish(
        self, tx: Tx, job: dict[str, Any], owner: str, target: ImportStatus, fields: dict[str, Any]
    ) -> None:
        """Close the job this worker holds (guarded by the table; LeaseLost when it lost it)."""
        r = await tx.db[IMPORT_JOBS].update_one(
            {"_id": job["_id"], "owner": owner, **IMPORT_JOB.guard(target)},
            {"$set": {"status": target.value, "finished_at": utcnow(), **fields}, "$unset": {"lease_until": ""}},
            session=tx.session,
        )
        if r.matched_count == 0:
            raise LeaseLost(job["_id"])

    async def record_batch(self, tx: Tx, doc: dict[str, Any]) -> int:
        """The batch's import record, with the SKU's available keys counted in the same transaction."""
        await tx.db[IMPORTS].insert_one(doc, session=tx.session)
        return await count_available(tx.db, doc["sku_id"], utcnow(), tx.session)

    # -- batches

    async def batches(self, sku_id: str, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The SKU's batches, newest first, with their sold and disabled keys counted (index ranges
        on (batch_id, status): small, never a scan of a 100,000-key batch)."""
        query = {"sku_id": sku_id}
        total = await self.db[IMPORTS].count_documents(query)
        docs = [d async for d in self.db[IMPORTS].find(query).sort("at", -1).skip(skip).limit(limit)]
        for d in docs:
            for status in (KeyStatus.SOLD, KeyStatus.DISABLED):
                d[status.value] = int(
                    await self.db[CARD_KEYS].count_documents({"batch_id": d["_id"], "status": status.value})
                )
        return docs, int(total)

    async def disable_batch(self, tx: Tx, batch_id: str, by: str, now: datetime) -> tuple[dict[str, Any] | None, int]:
        """Every available key of the batch -> disabled, and the supply change recorded on the batch
        (`supply_pending`) in the same transaction: applied right after, or by the worker after a
        crash. Returns the batch (None: no such batch) and how many keys this call disabled."""
        batch: dict[str, Any] | None = await tx.db[IMPORTS].find_one({"_id": batch_id}, session=tx.session)
        if batch is None:
            return None, 0
        r = await tx.db[CARD_KEYS].update_many(
            {"batch_id": batch_id, **CARD_KEY.guard(KeyStatus.DISABLED)},
            {"$set": {"status": KeyStatus.DISABLED.value, "disabled_at": now, "batch_disabled": True}},
            session=tx.session,
        )
        disabled = int(r.modified_count)
        batch["sold"] = int(
            await tx.db[CARD_KEYS].count_documents(
                {"batch_id": batch_id, "status": KeyStatus.SOLD.value}, session=tx.session
            )
        )
        fields: dict[str, Any] = {"disabled_by": batch.get("disabled_by", by)}
        if batch.get("disabled_at") is None:
            fields["disabled_at"] = now
        update: dict[str, Any] = {"$set": fields}
        if disabled:
            update["$set"]["supply_pending"] = True
            update["$inc"] = {"disabled_keys": disabled}
        await tx.db[IMPORTS].update_one({"_id": batch_id}, update, session=tx.session)
        return batch, disabled

    async def pending_supply(self, limit: int = 20) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = (
            await self.db[IMPORTS].find({"supply_pending": True}, {"sku_id": 1, "disabled_keys": 1}).to_list(limit)
        )
        return docs

    async def supply_applied(self, batch_id: str) -> None:
        await self.db[IMPORTS].update_one({"_id": batch_id}, {"$unset": {"supply_pending": ""}})


# -- the store object the use cases hold ----------------------------------------------------------


def _session(tx: Tx | None) -> Session:
    return tx.session if tx is not None else None


class FulfilmentStore:
    """Every database call of the service, on one database. Calls that take a `tx` run inside the
    caller's unit of work (its session); the others stand alone."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.jobs = ImportJobStore(db)
        self._given_up: dict[str, float] = {}

    def _db(self, tx: Tx | None) -> Db:
        return tx.db if tx is not None else self.db

    # -- the SKU projection and the vault

    async def get_sku(self, sku_id: str) -> dict[str, Any] | None:
        return await get_sku(self.db, sku_id)

    async def wait_for_sku(self, sku_id: str, seconds: float) -> dict[str, Any] | None:
        """Read the projection until the SKU appears or `seconds` pass (Decision 19: the catalog
        acknowledged it, its `catalog.sku-changed` is on the way). An id that never appeared is
        answered at once for a while after, so made-up ids cost one wait, not one each."""
        now = time.monotonic()
        if self._given_up.get(sku_id, 0.0) > now:
            return None
        deadline, pause = now + seconds, 0.05
        while True:
            sku = await get_sku(self.db, sku_id)
            if sku is not None:
                return sku
            left = deadline - time.monotonic()
            if left <= 0:
                now = time.monotonic()
                if len(self._given_up) > 10_000:  # made-up ids must not grow memory without end
                    self._given_up = {k: t for k, t in self._given_up.items() if t > now}
                self._given_up[sku_id] = now + 30.0
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.4)

    async def project_sku(self, tx: Tx, sku: dict[str, Any]) -> bool:
        return await project_sku(tx.db, tx.session, sku)

    async def import_keys(
        self, uow: UnitOfWork, vault: Vault, sku: dict[str, Any], batch: ParsedBatch, *, by: str, source: str
    ) -> ImportReport:
        return await import_keys(uow, vault, sku, batch, by=by, now=utcnow(), source=source)

    async def reusable_key(self, tx: Tx, sku_id: str, now: datetime) -> tuple[str, datetime | None] | None:
        """The key a reusable SKU hands every buyer: its newest available, unexpired key, with
        its expiry (None: it does not expire)."""
        doc = await tx.db[CARD_KEYS].find_one(
            await sellable(tx.db, sku_id, now, tx.session),
            {"_id": 1, "expires_at": 1},
            sort=[("imported_at", -1), ("_id", -1)],
            session=tx.session,
        )
        return (str(doc["_id"]), doc.get("expires_at")) if doc else None

    async def open_key(self, vault: Vault, key_id: str) -> tuple[str, datetime | None] | None:
        """One key's code (for a reusable key's reveal: the owner check is the delivery's)."""
        d = await self.db[CARD_KEYS].find_one({"_id": key_id})
        if d is None:
            return None
        return vault.open(Sealed(d["kid"], bytes(d["nonce"]), bytes(d["ct"])), d["sku_id"]), d.get("expires_at")

    async def claim_keys(self, tx: Tx, sku_id: str, claim_id: str, quantity: int, *, user_id: str) -> list[str]:
        return await claim_keys(tx, sku_id, claim_id, quantity, user_id=user_id)

    async def release_keys(self, tx: Tx, key_ids: list[str], claim_id: str) -> None:
        await release_keys(tx, key_ids, claim_id)

    async def mark_disputed(self, tx: Tx, claim_ids: list[str], ticket_id: str) -> None:
        await mark_disputed(tx, claim_ids, ticket_id)

    async def reveal_keys(self, vault: Vault, claim_id: str, *, user_id: str) -> list[tuple[str, datetime | None]]:
        return await reveal_keys(self.db, vault, claim_id, user_id=user_id)

    async def disable_key(self, tx: Tx, sku_id: str, key_id: str) -> str | None:
        return await disable_key(tx, sku_id, key_id, utcnow())

    async def disable_codes(
        self, tx: Tx, vault: Vault, sku_id: str, codes: list[str], now: datetime
    ) -> tuple[dict[str, list[int]], list[str]]:
        return await disable_codes(tx, vault, sku_id, codes, now)

    async def list_keys(
        self, sku_id: str, status: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await list_keys(self.db, sku_id, status, skip, limit)

    async def vault_counts(self, sku_id: str) -> dict[str, int]:
        return await vault_counts(self.db, sku_id, utcnow())

    async def supply_truth(self, sku_id: str) -> tuple[int, list[str]]:
        return await supply_truth(self.db, sku_id, utcnow())

    async def vault_skus(self) -> list[str]:
        return await vault_skus(self.db)

    # -- deliveries

    async def open_delivery(self, tx: Tx, doc: dict[str, Any]) -> bool:
        """False when the order already has its delivery (the `_id` is the order id)."""
        try:
            await tx.db[DELIVERIES].insert_one(doc, session=tx.session)
        except DuplicateKeyError:
            return False
        return True

    async def get_delivery(
        self, order_id: str, *, tx: Tx | None = None, user_id: str | None = None
    ) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": order_id}
        if user_id is not None:
            query["user_id"] = user_id
        doc: dict[str, Any] | None = await self._db(tx)[DELIVERIES].find_one(query, session=_session(tx))
        return doc

    async def move_delivery(
        self,
        tx: Tx | None,
        order_id: str,
        target: DeliveryStatus,
        *,
        only_from: DeliveryStatus | None = None,
        also: dict[str, Any] | None = None,
        set_: dict[str, Any] | None = None,
        unset: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Move a delivery to `target` if the table allows it from its status (narrowed to
        `only_from` when given, and to documents matching `also`); the document after, or None
        when nothing matched (already closed, moved meanwhile)."""
        guard = DELIVERY.guard(target)
        if only_from is not None:
            if not DELIVERY.can_move(only_from, target):
                raise ValueError(f"a delivery cannot move from {only_from} to {target}")
            guard = {DELIVERY.field: only_from.value}
        update: dict[str, Any] = {"$set": {"status": target.value, **(set_ or {})}}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        doc: dict[str, Any] | None = await self._db(tx)[DELIVERIES].find_one_and_update(
            {"_id": order_id, **(also or {}), **guard},
            update,
            session=_session(tx),
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def annotate_delivery(
        self, order_id: str, status: DeliveryStatus, fields: dict[str, Any], *, also: dict[str, Any] | None = None
    ) -> None:
        """Set fields of a delivery still in `status` (no status change): the request id before
        sending, the next attempt or poll time."""
        await self.db[DELIVERIES].update_one(
            {"_id": order_id, "status": status.value, **(also or {})}, {"$set": fields}
        )

    async def due_direct(self, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Direct top-ups waiting to be sent."""
        query = {"mode": "direct", "status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}}
        docs: list[dict[str, Any]] = await self.db[DELIVERIES].find(query).limit(limit).to_list(limit)
        return docs

    async def stale_direct(self, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Sent top-ups without a result by their poll time (lost callbacks)."""
        query = {"mode": "direct", "status": DeliveryStatus.SUBMITTED.value, "poll_at": {"$lte": now}}
        docs: list[dict[str, Any]] = await self.db[DELIVERIES].find(query).limit(limit).to_list(limit)
        return docs

    async def add_reissue(self, tx: Tx, order_id: str, record: dict[str, Any]) -> None:
        await tx.db[DELIVERIES].update_one({"_id": order_id}, {"$push": {"reissues": record}}, session=tx.session)

    # -- the manual queue

    async def add_task(self, tx: Tx, doc: dict[str, Any]) -> None:
        await tx.db[MANUAL_TASKS].insert_one(doc, session=tx.session)

    async def close_task(
        self, tx: Tx, task_id: str, target: TaskStatus, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Guarded: a task closes once; None when it is not (or no longer) open."""
        task: dict[str, Any] | None = await tx.db[MANUAL_TASKS].find_one_and_update(
            {"_id": task_id, **MANUAL_TASK.guard(target)},
            {"$set": {"status": target.value, **fields}},
            session=tx.session,
            return_document=ReturnDocument.AFTER,
        )
        return task

    async def count_tasks(self, status: TaskStatus) -> int:
        return int(await self.db[MANUAL_TASKS].count_documents({"status": status.value}))

    async def task_exists(self, task_id: str, *, tx: Tx | None = None) -> bool:
        found = await self._db(tx)[MANUAL_TASKS].find_one({"_id": task_id}, {"_id": 1}, session=_session(tx))
        return found is not None

    async def list_tasks(self, status: str, limit: int) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = (
            await self.db[MANUAL_TASKS]
            .find({"status": status})
            .sort([("urged", -1), ("created_at", 1)])
            .limit(limit)
            .to_list(limit)
        )
        return docs

    async def task_content(self, order_id: str) -> dict[str, Any] | None:
        """The sealed content staff handed over for a manual order, if any."""
        task = await self.db[MANUAL_TASKS].find_one({"_id": order_id}, {"content": 1})
        content: dict[str, Any] | None = task.get("content") if task else None
        return content

    # -- first reveal and expiry reminders (待使用, 订单到期提醒)

    async def mark_revealed(self, tx: Tx, order_id: str, at: datetime) -> bool:
        """The first reveal of a delivery's keys, once (later reveals find it set)."""
        result = await tx.db[DELIVERIES].update_one(
            {"_id": order_id, "revealed_at": None}, {"$set": {"revealed_at": at}}, session=tx.session
        )
        return bool(result.modified_count)

    async def expiring_sold_keys(self, now: datetime, horizon: datetime, limit: int) -> dict[str, datetime]:
        """order (claim) id -> the earliest expiry of its sold keys that expire between now and
        `horizon` and were not looked at for a reminder yet."""
        cursor = (
            self.db[CARD_KEYS]
            .find(
                {"status": "sold", "expires_at": {"$gt": now, "$lte": horizon}, "remind_checked": None},
                {"order_id": 1, "expires_at": 1},
            )
            .sort("expires_at", 1)
            .limit(limit)
        )
        found: dict[str, datetime] = {}
        async for doc in cursor:
            found.setdefault(doc["order_id"], doc["expires_at"])
        return found

    async def expiring_reusable_deliveries(self, now: datetime, horizon: datetime, limit: int) -> dict[str, datetime]:
        """order id -> the expiry of its reusable key, for deliveries of a reusable key that
        expires between now and `horizon`, not revealed and not reminded yet. A reusable key stays
        `available` (every buyer gets it), so it is not among the sold keys: its expiry is kept on
        each delivery instead."""
        cursor = (
            self.db[DELIVERIES]
            .find(
                {"key_expires_at": {"$gt": now, "$lte": horizon}, "revealed_at": None, "reminded_at": None},
                {"key_expires_at": 1},
            )
            .sort("key_expires_at", 1)
            .limit(limit)
        )
        return {str(doc["_id"]): doc["key_expires_at"] async for doc in cursor}

    async def mark_reminded(self, tx: Tx, order_id: str, at: datetime) -> bool:
        """Claim the one reminder of an unrevealed delivery (False: revealed, or reminded already)."""
        result = await tx.db[DELIVERIES].update_one(
            {"_id": order_id, "revealed_at": None, "reminded_at": None},
            {"$set": {"reminded_at": at}},
            session=tx.session,
        )
        return bool(result.modified_count)

    async def keys_looked_at(self, tx: Tx, order_id: str) -> None:
        """This claim's keys are done with for reminders: the sweep does not read them again."""
        await tx.db[CARD_KEYS].update_many(
            {"order_id": order_id, "status": "sold"}, {"$set": {"remind_checked": True}}, session=tx.session
        )

    # -- the reveal log

    async def record_reveal(self, doc: dict[str, Any]) -> None:
        await self.db[REVEALS].insert_one(doc)
