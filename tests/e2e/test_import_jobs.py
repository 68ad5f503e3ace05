"""Card-key imports as jobs through the gateway on the real stack (issue 18): 100,000 keys in one
upload with progress readable while it runs, the fulfilment service killed mid-job and restarted
(exactly 100,000 keys after), the same upload twice is one job, one bad line fails the whole job
with nothing sellable, and a SKU's batches listed and one disabled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from deploy.platform import Platform
from shared.contracts.envelope import new_id
from tests.e2e.catalog_kit import ADMIN, tree_path
from tests.e2e.test_vault import import_text, new_sku, settle, stock
from tests.helpers import auth, wait_until

KEYS = 100_000


@pytest.fixture
def gateway(platform: Platform) -> Iterator[httpx.Client]:
    # The gateway's own upstream timeout (10 s) bounds every request; this only bounds the client.
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def vault_db(infra: dict[str, str]) -> Iterator[Any]:
    client: MongoClient[Any] = MongoClient(infra["MONGODB_URL"], tz_aware=True)
    yield client["kameng_fulfilment"]
    client.close()


@pytest.fixture(scope="module", autouse=True)
def fresh_fulfilment_after(platform: Platform, vault_db: Any) -> Iterator[None]:
    """Hand later modules a fresh fulfilment process. After this module (megabyte uploads, a kill
    and a restart) the process's request spans stopped joining the gateway's traces (every request
    logged under one trace id), which broke test_vault's trace assertions when run after it. Not
    understood yet (suspect: uvicorn's flow control resuming reads from inside a request task,
    carrying that task's tracing context); reported, to be fixed where tracing is set up."""
    yield
    platform.restart("fulfilment")


@pytest.fixture(scope="module")
def category(platform: Platform) -> str:
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as gateway:
        return tree_path(gateway, "游戏点卡", f"批量 {new_id()[:6]}")[1]


def upload(gateway: httpx.Client, sku_id: str, data: bytes, key: str | None = None) -> httpx.Response:
    headers = {**ADMIN, **({"Idempotency-Key": key} if key else {})}
    return gateway.post(
        f"/api/v1/admin/skus/{sku_id}/card-keys", files={"file": ("keys.csv", data, "text/csv")}, headers=headers
    )


def job(gateway: httpx.Client, status_url: str) -> dict[str, Any]:
    r = gateway.get(status_url, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def finished(gateway: httpx.Client, status_url: str, timeout: float = 600) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (j := job(gateway, status_url))["status"] in ("succeeded", "failed") and j,
        timeout=timeout,
        interval=1.0,
        message="the import job to finish",
    )


@pytest.mark.timeout(900)  # a 100,000-key job on a loaded 2-core machine: minutes, not seconds
def test_a_hundred_thousand_keys_survive_a_kill_mid_job_and_count_once(
    gateway: httpx.Client, category: str, vault_db: Any, platform: Platform
) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    data = ("卡号,密码\r\n" + "\r\n".join(f"卡-{tag}-{i:06d},密-{i:06d}" for i in range(KEYS))).encode("gb18030")
    key = f"import-{tag}"
    r = upload(gateway, sku_id, data, key)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"job_id", "status_url"}
    assert accepted["status_url"] == f"/api/v1/admin/card-key-imports/{accepted['job_id']}"
    # The same upload again (a retried request): the same job.
    again = upload(gateway, sku_id, data, key)
    assert again.status_code == 202 and again.json() == accepted
    assert vault_db.import_jobs.count_documents({"sku_id": sku_id}) == 1

    # Progress is readable while it runs; kill the service once some keys are written.
    seen: list[int] = []

    def some_written() -> bool:
        j = job(gateway, accepted["status_url"])
        assert j["status"] in ("queued", "running"), j
        seen.append(j["processed"])
        return j["status"] == "running" and 0 < j["processed"] < KEYS

    wait_until(some_written, timeout=300, interval=0.5, message="a running job with progress")
    running = job(gateway, accepted["status_url"])
    assert running["total"] == KEYS and running["batch_id"] is None
    # Keys are written once, as they will be sold, but nothing is sellable (nor counted) before
    # the whole job succeeds.
    assert vault_db.card_keys.count_documents({"sku_id": sku_id}) > 0
    before = stock(gateway, sku_id)
    assert (before["available"], before["supply"]) == (0, 0), before
    platform.kill("fulfilment")
    platform.processes["fulfilment"].start()
    platform.wait_ready("fulfilment")

    done = finished(gateway, accepted["status_url"])
    assert done["status"] == "succeeded", done
    assert (done["total"], done["processed"], done["accepted"], done["duplicates"], done["invalid"]) == (
        KEYS,
        KEYS,
        KEYS,
        0,
        [],
    )
    assert seen == sorted(seen)
    assert vault_db.card_keys.count_documents({"sku_id": sku_id}) == KEYS
    assert vault_db.card_keys.count_documents({"batch_id": done["batch_id"], "status": "available"}) == KEYS
    assert len(vault_db.card_keys.distinct("line", {"sku_id": sku_id})) == KEYS
    settle(vault_db, sku_id)
    view = stock(gateway, sku_id)
    assert (view["available"], view["supply"]) == (KEYS, KEYS)
    (batch,) = gateway.get(f"/api/v1/admin/skus/{sku_id}/card-key-batches", headers=ADMIN).json()["items"]
    assert (batch["batch_id"], batch["count"], batch["sold"], batch["job_id"]) == (
        done["batch_id"],
        KEYS,
        0,
        accepted["job_id"],
    )
    assert batch["source"] == "file:keys.csv" and batch["imported_by"]


def test_one_bad_line_fails_the_job_and_leaves_nothing(gateway: httpx.Client, category: str, vault_db: Any) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    lines = [f"BAD-{tag}-{i:06d}" for i in range(KEYS)]
    lines[54_320] = "a,b,c"  # line 54,321
    started = time.perf_counter()
    r = upload(gateway, sku_id, "\n".join(lines).encode())
    assert r.status_code == 202, r.text
    assert time.perf_counter() - started < 10
    done = finished(gateway, r.json()["status_url"])
    assert done["status"] == "failed" and done["batch_id"] is None and done["accepted"] == 0
    assert done["invalid"] == [{"line": 54_321, "reason": "expected card or card,password, found 3 fields"}]
    assert vault_db.card_keys.count_documents({"sku_id": sku_id}) == 0
    assert stock(gateway, sku_id)["supply"] == 0
    assert gateway.get(f"/api/v1/admin/skus/{sku_id}/card-key-batches", headers=ADMIN).json()["total"] == 0
    assert gateway.get("/api/v1/admin/card-key-imports/nope", headers=ADMIN).status_code == 404
    assert gateway.get(r.json()["status_url"], headers=auth()).status_code == 403


def test_batches_are_listed_and_a_batch_is_disabled_at_once(
    gateway: httpx.Client, category: str, vault_db: Any
) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    first = import_text(gateway, sku_id, "\n".join(f"B1-{tag}-{i}" for i in range(30))).json()["batch_id"]
    second = import_text(gateway, sku_id, "\n".join(f"B2-{tag}-{i}" for i in range(20))).json()["batch_id"]
    listed = gateway.get(f"/api/v1/admin/skus/{sku_id}/card-key-batches", headers=ADMIN).json()
    assert listed["total"] == 2 and [b["batch_id"] for b in listed["items"]] == [second, first]
    assert [(b["count"], b["sold"], b["disabled"]) for b in listed["items"]] == [(20, 0, 0), (30, 0, 0)]
    assert stock(gateway, sku_id)["supply"] == 50

    path = f"/api/v1/admin/card-key-batches/{first}/disable"
    assert gateway.post(path, headers=auth(roles=("staff",))).status_code == 403
    r = gateway.post(path, headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"batch_id": first, "disabled": 30, "sold": 0}, r.text
    assert gateway.post(path, headers=ADMIN).json()["disabled"] == 0
    assert gateway.post("/api/v1/admin/card-key-batches/nope/disable", headers=ADMIN).status_code == 404
    view = stock(gateway, sku_id)
    assert (view["available"], view["disabled"], view["supply"]) == (20, 30, 20)
    assert vault_db.card_keys.count_documents({"batch_id": first, "status": "disabled"}) == 30
    (disabled,) = [
        b
        for b in gateway.get(f"/api/v1/admin/skus/{sku_id}/card-key-batches", headers=ADMIN).json()["items"]
        if b["batch_id"] == first
    ]
    assert disabled["disabled"] == 30 and disabled["disabled_at"]
    # A rebuild from the vault agrees (and counts the batch's disable once).
    assert gateway.post(f"/api/v1/admin/skus/{sku_id}/stock/rebuild", headers=ADMIN).json()["supply"] == 20
