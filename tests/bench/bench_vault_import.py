"""Card keys imported per second for a 100,000-key upload through the real HTTP API (gateway ->
fulfilment: spooled, queued as a job, validated, sealed and fingerprinted, written as staged keys
chunk by chunk, made available at the end), from the upload until the job reports `succeeded`,
against raw MongoDB `insert_many` of as many documents of the same shape, measured in the same run
on the same database with the vault's indexes (the ceiling for the import). Target: ratio >= 0.5.

Starts the embedded stack and the platform unless KAFKA_BOOTSTRAP_SERVERS, MONGODB_URL and
REDIS_URL name running infrastructure. BENCH_IMPORT_RUNS (default 1) and BENCH_IMPORT_KEYS
(default 100000) change the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from services.fulfilment import store
from shared.contracts.envelope import new_id
from shared.mongo import connect, ensure_indexes
from tests.helpers import auth

ADMIN = auth(roles=("admin",))
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "1"))
KEYS = int(os.environ.get("BENCH_IMPORT_KEYS", "100000"))


def _sku(gateway: httpx.Client, vault_db: Any) -> str:
    def post(path: str, body: dict[str, Any]) -> str:
        r = gateway.post(f"/api/v1/admin/{path}", json=body, headers=ADMIN)
        r.raise_for_status()
        return str(next(iter(r.json().values())))

    scenario = post("scenarios", {"name": "bench"})
    category = post("categories", {"scenario_id": scenario, "name": "bench"})
    product = post("products", {"category_id": category, "name": f"bench {new_id()[:6]}"})
    sku_id = post(
        f"products/{product}/skus",
        {
            "name": "bench",
            "face_value_cents": 100,
            "prices": {"retail": 100},
            "delivery_mode": "auto",
            "validity_days": 365,
        },
    )
    deadline = time.monotonic() + 30
    while vault_db.skus.find_one({"_id": sku_id}) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the vault never received the SKU")
        time.sleep(0.1)
    return sku_id


def api_import(gateway: httpx.Client, vault_db: Any, keys: int) -> float:
    """Keys per second from sending the upload until the job (or the small import) is done."""
    sku_id = _sku(gateway, vault_db)
    tag = new_id()[:10]
    body = "\n".join(f"BENCH-{tag}-{i:06d},PW-{i:06d}" for i in range(keys)).encode()
    started = time.perf_counter()
    r = gateway.post(
        f"/api/v1/admin/skus/{sku_id}/card-keys", content=body, headers={**ADMIN, "content-type": "text/plain"}
    )
    r.raise_for_status()
    if r.status_code == 202:
        while (job := gateway.get(r.json()["status_url"], headers=ADMIN).json())["status"] not in (
            "succeeded",
            "failed",
        ):
            time.sleep(0.25)
        assert job["status"] == "succeeded" and job["accepted"] == keys, job
    else:
        assert r.json()["accepted"] == keys, r.text
    return keys / (time.perf_counter() - started)


async def raw_insert(mongodb_url: str, keys: int) -> tuple[float, float]:
    """One insert_many of every document (the driver batches it) into a collection with the
    vault's indexes, and insert_one one by one."""
    mongo = connect(mongodb_url, "kameng_fulfilment")
    name = f"bench_raw_{new_id()[:8]}"
    await ensure_indexes(
        mongo.db, [store.Index(name, i.keys, i.options) for i in store.INDEXES if i.collection == store.CARD_KEYS]
    )
    docs = [
        {
            "_id": new_id(),
            "sku_id": "bench",
            "fp": os.urandom(32).hex(),
            "kid": "k1",
            "nonce": os.urandom(12),
            "ct": os.urandom(40),
            "status": "available",
            "batch_id": f"b{i % 7}",
            "line": i,
            "expires_at": None,
        }
        for i in range(keys)
    ]
    try:
        started = time.perf_counter()
        await mongo.db[name].insert_many(docs, ordered=False)
        bulk = keys / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(300):
            await mongo.db[name].insert_one(
                {"_id": new_id(), "fp": os.urandom(32).hex(), "sku_id": "single", "line": i}
            )
        single = 300 / (time.perf_counter() - started)
    finally:
        await mongo.db.drop_collection(name)
        mongo.close()
    return bulk, single


def run(infra: dict[str, str], runs: int, keys: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="kameng-bench-"))
    platform = Platform(
        base_env={**default_base_env(infra), "KAMENG_ENV": "test", "LOG_LEVEL": "WARNING"}, logs_dir=logs
    )
    platform.start()
    client: MongoClient[Any] = MongoClient(infra["MONGODB_URL"])
    try:
        with httpx.Client(base_url=platform.gateway_url, timeout=300) as gateway:
            api_import(gateway, client["kameng_fulfilment"], 500)  # warm-up: connections, code paths
            api_rates, raw_rates, single_rates = [], [], []
            for _ in range(runs):
                bulk, single = asyncio.run(raw_insert(infra["MONGODB_URL"], keys))
                raw_rates.append(bulk)
                single_rates.append(single)
                api_rates.append(api_import(gateway, client["kameng_fulfilment"], keys))
    finally:
        client.close()
        platform.stop()
    api, raw, single = (statistics.median(x) for x in (api_rates, raw_rates, single_rates))
    print(f"vault import, {keys} keys per upload, {runs} runs (median):")
    print(f"  HTTP API, upload to job succeeded  {api:10.0f} keys/s   runs: {', '.join(f'{x:.0f}' for x in api_rates)}")
    print(f"  raw MongoDB insert_many            {raw:10.0f} docs/s   runs: {', '.join(f'{x:.0f}' for x in raw_rates)}")
    print(f"  raw MongoDB insert_one, one by one {single:10.0f} docs/s")
    print(f"  API / raw bulk insert ratio        {api / raw:10.2f}")
    print(f"  (logs: {logs})")
    return {
        "keys_per_request": keys,
        "runs": runs,
        "api_keys_per_second": round(api),
        "raw_insert_many_docs_per_second": round(raw),
        "raw_insert_one_docs_per_second": round(single),
        "api_to_raw_bulk_ratio": round(api / raw, 2),
    }


def main() -> dict[str, Any]:
    needed = ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL", "REDIS_URL")
    if all(os.environ.get(k) for k in needed):
        return run({k: os.environ[k] for k in needed}, RUNS, KEYS)
    with EmbeddedStack() as infra:
        return run(infra, RUNS, KEYS)
