"""The vault's store functions on the real database and Redis: all-or-nothing bulk import with
duplicates found against the vault, concurrent imports of the same keys, guarded claims that never
give one key to two orders, reveal, expiry, and rebuilds that a late supply change cannot double."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.fulfilment import handlers, store
from services.fulfilment.crypto import Vault
from services.fulfilment.domain import parse_batch
from services.fulfilment.store import FulfilmentStore, claim_keys, claim_op, import_keys, import_op, reveal_keys
from services.fulfilment.usecases.stock import rebuild
from shared import redis_client
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.fulfilment import KeyDisabled, KeysImported
from shared.inventory import Inventory
from shared.messaging.outbox import OUTBOX, OUTBOX_INDEXES, Tx, UnitOfWork
from shared.mongo import Mongo, connect, ensure_indexes

VAULT = Vault.from_config("k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=")


@pytest.fixture
async def mongo(infra: dict[str, str]) -> AsyncIterator[Mongo]:
    m = connect(infra["MONGODB_URL"], f"test_vault_{new_id()[:10]}")
    await ensure_indexes(m.db, [*OUTBOX_INDEXES, *store.INDEXES])
    yield m
    await m.client.drop_database(m.db.name)
    m.close()


@pytest.fixture
async def inventory(infra: dict[str, str]) -> AsyncIterator[Inventory]:
    redis = redis_client.connect(infra["REDIS_URL"])
    yield Inventory(redis)
    await redis.aclose()


def _sku(validity_days: int | None = 365) -> dict[str, Any]:
    return {"_id": new_id(), "revision": 1, "delivery_mode": "auto", "validity_days": validity_days}


async def _import(mongo: Mongo, sku: dict[str, Any], codes: list[str], **kw: Any) -> store.ImportReport:
    uow = UnitOfWork(mongo, producer="fulfilment")
    return await import_keys(
        uow, VAULT, sku, parse_batch("\n".join(codes)), by="admin", now=kw.get("now", utcnow()), source="body"
    )


async def test_import_is_all_or_nothing_and_finds_duplicates_in_the_vault(mongo: Mongo) -> None:
    sku = _sku()
    first = await _import(mongo, sku, [f"K{i}" for i in range(1000)])
    assert (first.accepted, first.duplicates, first.available) == (1000, [], 1000)
    # Half of the next batch is already in the vault (any SKU): exactly those are reported.
    second = await _import(mongo, _sku(), [f"K{i}" for i in range(500, 1500)])
    assert second.accepted == 500
    assert [d["line"] for d in second.duplicates] == list(range(1, 501))
    assert await mongo.db[store.CARD_KEYS].count_documents({}) == 1500
    # One outbox event per committed batch; none for the batch that added nothing.
    assert await mongo.db[OUTBOX].count_documents({"type": "fulfilment.keys-imported"}) == 2
    nothing = await _import(mongo, sku, [f"K{i}" for i in range(10)])
    assert (nothing.accepted, nothing.batch_id) == (0, None)
    assert await mongo.db[store.IMPORTS].count_documents({}) == 2


async def test_concurrent_imports_of_the_same_keys_store_each_key_once(mongo: Mongo) -> None:
    sku = _sku()
    codes = [f"C{i}" for i in range(300)]
    reports = await asyncio.gather(*(_import(mongo, sku, codes) for _ in range(3)))
    assert sum(r.accepted for r in reports) == 300
    assert all(r.accepted + len(r.duplicates) == 300 for r in reports)
    assert await mongo.db[store.CARD_KEYS].count_documents({"sku_id": sku["_id"]}) == 300


async def _claim(mongo: Mongo, sku_id: str, order_id: str, quantity: int) -> list[str]:
    async def fn(tx: Tx) -> list[str]:
        return await claim_keys(tx, sku_id, order_id, quantity, utcnow())

    return await UnitOfWork(mongo, producer="fulfilment").run(fn)


async def test_concurrent_claims_never_give_a_key_to_two_orders(mongo: Mongo) -> None:
    sku = _sku()
    codes = [f"CLAIM-{new_id()}" for _ in range(10)]
    await _import(mongo, sku, codes)
    results = await asyncio.gather(*(_claim(mongo, sku["_id"], f"order-{i}", 3) for i in range(8)))
    claimed = [key for keys in results for key in keys]
    assert len(claimed) == len(set(claimed)) == 10  # every key once, none twice
    assert all(len(keys) <= 3 for keys in results)
    assert sorted(len(keys) for keys in results).count(3) == 3  # 3 + 3 + 3 + 1 = 10
    for i, keys in enumerate(results):
        owners = await mongo.db[store.CARD_KEYS].distinct("order_id", {"_id": {"$in": keys}})
        assert owners == ([f"order-{i}"] if keys else [])
    # A repeated claim (redelivered order.paid) returns what the order already got.
    again = await _claim(mongo, sku["_id"], "order-0", 3)
    assert sorted(again) == sorted(results[0])
    assert await _claim(mongo, sku["_id"], "late-order", 1) == []  # short: the caller refunds


async def test_reveal_decrypts_what_the_order_got_and_expired_keys_are_not_sold(mongo: Mongo) -> None:
    sku = _sku(validity_days=30)
    old = _sku(validity_days=1)
    await _import(mongo, old, ["OLD-1"], now=utcnow() - timedelta(days=2))
    await _import(mongo, sku, ["CODE-A", "CODE-B,PASS-B"])
    assert await _claim(mongo, old["_id"], "o-old", 1) == []  # expired

    async def claim_for_buyer(tx: Tx) -> list[str]:
        return await claim_keys(tx, sku["_id"], "o-1", 2, user_id="buyer-1")

    assert len(await UnitOfWork(mongo, producer="fulfilment").run(claim_for_buyer)) == 2
    assert await reveal_keys(mongo.db, VAULT, "o-1", user_id="someone-else") == []
    revealed = await reveal_keys(mongo.db, VAULT, "o-1", user_id="buyer-1")
    assert sorted(code for code, _ in revealed) == ["CODE-A", "CODE-B,PASS-B"]
    assert all(expires is not None and expires > utcnow() + timedelta(days=29) for _, expires in revealed)
    counts = await store.vault_counts(mongo.db, old["_id"], utcnow())
    assert (counts["available"], counts["expired"]) == (0, 1)


async def test_rebuild_counts_the_vault_and_a_late_change_is_not_applied_twice(
    mongo: Mongo, inventory: Inventory
) -> None:
    sku = _sku()
    report = await _import(mongo, sku, [f"R{i}-{sku['_id']}" for i in range(6)])
    keys = await _claim(mongo, sku["_id"], "o-7", 2)
    assert report.batch_id is not None and len(keys) == 2
    # Neither the import nor the claim reached Redis (the process died after commit).
    assert await rebuild(FulfilmentStore(mongo.db), inventory, sku["_id"]) == 4
    assert await inventory.adjust_supply(sku["_id"], 6, op_id=import_op(report.batch_id)) is None
    assert await inventory.adjust_supply(sku["_id"], -2, op_id=claim_op("o-7")) is None
    assert (await inventory.stock(sku["_id"])).supply == 4
    # A change committed after the rebuild still applies.
    later = await _import(mongo, sku, [f"L-{sku['_id']}"])
    assert later.batch_id is not None
    assert await inventory.adjust_supply(sku["_id"], 1, op_id=import_op(later.batch_id)) == 5


async def test_the_import_event_handler_is_the_safety_net_of_the_fast_path(mongo: Mongo, inventory: Inventory) -> None:
    """The process died after the commit, before its own Redis call: the handler of the outboxed
    event adds the batch, once however often the event comes."""
    sku = _sku()
    await inventory.set_supply(sku["_id"], 0)  # the counter exists; the fast path never ran
    report = await _import(mongo, sku, [f"S{i}-{sku['_id']}" for i in range(3)])
    assert report.batch_id is not None
    event = KeysImported(sku_id=sku["_id"], batch_id=report.batch_id, accepted=3, available=3)
    ctx: Any = SimpleNamespace(
        tx=SimpleNamespace(db=mongo.db), deps=SimpleNamespace(store=FulfilmentStore(mongo.db), inventory=inventory)
    )
    for _ in range(3):
        await handlers.add_imported_supply(event, ctx)
    assert (await inventory.stock(sku["_id"])).supply == 3


async def test_a_change_arriving_after_redis_lost_the_counter_rebuilds_instead(
    mongo: Mongo, inventory: Inventory
) -> None:
    """Redis lost the SKU's keys (markers too) while a disable was in flight: applying -1 to
    nothing would start a counter at -1 that no start-up rebuild fixes (it exists)."""
    sku = _sku()
    await _import(mongo, sku, [f"D{i}-{sku['_id']}" for i in range(4)])
    key = await mongo.db[store.CARD_KEYS].find_one({"sku_id": sku["_id"]})

    async def disable(tx: Tx) -> str | None:
        return await store.disable_key(tx, sku["_id"], key["_id"], utcnow())

    assert await UnitOfWork(mongo, producer="fulfilment").run(disable) == "available"
    assert not await inventory.known(sku["_id"])
    ctx: Any = SimpleNamespace(
        tx=SimpleNamespace(db=mongo.db), deps=SimpleNamespace(store=FulfilmentStore(mongo.db), inventory=inventory)
    )
    await handlers.remove_disabled_supply(KeyDisabled(sku_id=sku["_id"], key_id=key["_id"]), ctx)
    assert (await inventory.stock(sku["_id"])).supply == 3
    await handlers.remove_disabled_supply(KeyDisabled(sku_id=sku["_id"], key_id=key["_id"]), ctx)
    assert (await inventory.stock(sku["_id"])).supply == 3


async def test_the_sku_projection_keeps_the_highest_revision(mongo: Mongo) -> None:
    sku_id = new_id()
    assert await store.project_sku(mongo.db, None, {"_id": sku_id, "revision": 2, "validity_days": 30})
    assert not await store.project_sku(mongo.db, None, {"_id": sku_id, "revision": 1, "validity_days": 1})
    assert not await store.project_sku(mongo.db, None, {"_id": sku_id, "revision": 2, "validity_days": 1})
    assert (await store.get_sku(mongo.db, sku_id) or {})["validity_days"] == 30
    assert await store.project_sku(mongo.db, None, {"_id": sku_id, "revision": 3, "validity_days": 90})
    assert (await store.get_sku(mongo.db, sku_id) or {})["validity_days"] == 90
