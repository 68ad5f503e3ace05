"""The card-key vault through the gateway on the real stack: import with duplicates and invalid
lines reported exactly, re-import adds nothing, 10,000 keys in one upload (a job), encrypted at rest,
disable, and the Redis stock counters after import, Redis loss + rebuild, a restart, and a
redelivered import event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import bson
import httpx
import msgspec
import pytest
import redis
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from deploy.platform import Platform
from shared.contracts.envelope import decode_envelope, encode_envelope, new_id
from shared.messaging.scan import scan
from tests.e2e.catalog_kit import ADMIN, product, sku, tree_path
from tests.helpers import auth, wait_until
from tests.otlp import Collector


@pytest.fixture
def gateway(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.gateway_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def vault_db(infra: dict[str, str]) -> Iterator[Any]:
    client: MongoClient[Any] = MongoClient(infra["MONGODB_URL"], tz_aware=True)
    yield client["kameng_fulfilment"]
    client.close()


@pytest.fixture(scope="module")
def rds(infra: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(infra["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def category(platform: Platform) -> str:
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as gateway:
        return tree_path(gateway, "游戏点卡", f"点卡 {new_id()[:6]}")[1]


def new_sku(gateway: httpx.Client, category: str, vault_db: Any, **overrides: Any) -> tuple[str, str]:
    """A card-key SKU that the vault knows (its projection of catalog.sku-changed has arrived)."""
    product_id = product(gateway, category, f"Steam 充值卡 {new_id()[:6]}")
    sku_id = sku(gateway, product_id, **overrides)
    wait_until(lambda: vault_db.skus.find_one({"_id": sku_id}), message="the vault's SKU projection")
    return product_id, sku_id


def import_text(gateway: httpx.Client, sku_id: str, text: str, headers: dict[str, str] = ADMIN) -> httpx.Response:
    return gateway.post(
        f"/api/v1/admin/skus/{sku_id}/card-keys",
        content=text.encode(),
        headers={**headers, "content-type": "text/plain; charset=utf-8"},
    )


def stock(gateway: httpx.Client, sku_id: str) -> dict[str, int]:
    r = gateway.get(f"/api/v1/admin/skus/{sku_id}/stock", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


HANDLERS = {
    "fulfilment.keys-imported": "fulfilment.add_imported_supply",
    "fulfilment.key-disabled": "fulfilment.remove_disabled_supply",
}


def settle(vault_db: Any, sku_id: str) -> None:
    """Until the vault's own handlers have seen every supply event of the SKU it wrote so far."""
    for record in vault_db.outbox.find({"key": sku_id, "type": {"$in": list(HANDLERS)}}):
        inbox_id = f"{HANDLERS[record['type']]}:{record['_id']}"
        wait_until(lambda inbox_id=inbox_id: vault_db.inbox.find_one({"_id": inbox_id}), message=inbox_id)


def catalog_stock(gateway: httpx.Client, product_id: str) -> str:
    (view,) = gateway.get(f"/api/v1/catalog/products/{product_id}").json()["skus"]
    return str(view["stock"])


BATCH = "\n".join(
    [
        "AAAA-0001-{t}",  # 1
        "",  # 2 blank: skipped
        "   AAAA-0002-{t}   ",  # 3 trimmed
        "AAAA-0001-{t}",  # 4 duplicate of line 1
        "CARD-9-{t} , PASS-9",  # 5 card,password
        "a,b,c",  # 6 three fields
        "card-{t},",  # 7 password missing
        "X" * 300,  # 8 too long
        "AAAA-0003-{t}",  # 9
        "\tAAAA-0002-{t}",  # 10 duplicate of line 3 once trimmed
        "   ",  # 11 blank
    ]
)


def test_import_reports_duplicates_and_invalid_lines_exactly(
    gateway: httpx.Client, category: str, vault_db: Any, rds: redis.Redis
) -> None:
    product_id, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    text = BATCH.format(t=tag)
    r = import_text(gateway, sku_id, text)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 4
    assert report["duplicates"] == 2
    assert report["duplicate_lines"] == [
        {"line": 4, "reason": "same key as line 1"},
        {"line": 10, "reason": "same key as line 3"},
    ]
    assert [i["line"] for i in report["invalid"]] == [6, 7, 8]
    assert "3 fields" in report["invalid"][0]["reason"] and "256" in report["invalid"][2]["reason"]
    assert stock(gateway, sku_id) | {"sku_id": None} == {
        "sku_id": None,
        "available": 4,
        "reserved": 0,
        "sold": 0,
        "disabled": 0,
        "expired": 0,
        "supply": 4,
        "sellable": 4,
    }
    assert catalog_stock(gateway, product_id) == "low"

    # The same file again (a retried request, a double click): nothing new, nothing stored.
    imports_before = vault_db.imports.count_documents({"sku_id": sku_id})
    again = import_text(gateway, sku_id, text).json()
    assert (again["accepted"], again["duplicates"], again["batch_id"]) == (0, 6, None)
    assert [d["line"] for d in again["duplicate_lines"]] == [1, 3, 4, 5, 9, 10]
    assert {d["reason"] for d in again["duplicate_lines"]} == {
        "already in the vault",
        "same key as line 1",
        "same key as line 3",
    }
    assert vault_db.imports.count_documents({"sku_id": sku_id}) == imports_before
    assert vault_db.card_keys.count_documents({"sku_id": sku_id}) == 4

    # A CSV upload with a header, one key already in the vault and one new.
    csv = f"card,password\r\nCARD-9-{tag},PASS-9\r\nNEW-{tag},PW\r\n".encode()
    r = gateway.post(
        f"/api/v1/admin/skus/{sku_id}/card-keys", files={"file": ("keys.csv", csv, "text/csv")}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["duplicate_lines"]) == (1, [{"line": 2, "reason": "already in the vault"}])
    assert stock(gateway, sku_id)["supply"] == 5 and stock(gateway, sku_id)["available"] == 5


def test_keys_are_encrypted_at_rest_and_never_logged_traced_or_on_the_bus(
    gateway: httpx.Client, category: str, vault_db: Any, platform: Platform, infra: dict[str, str], otlp: Collector
) -> None:
    _, sku_id = new_sku(gateway, category, vault_db, validity_days=30)
    codes = [f"SECRET-{new_id()}" for _ in range(5)]
    trace_id = new_id()
    traced = {**ADMIN, "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    assert import_text(gateway, sku_id, "\n".join(codes), headers=traced).json()["accepted"] == 5
    # The import's trace (gateway, fulfilment's HTTP, pymongo and redis spans) carries no key.
    otlp.wait_for(lambda s: s.trace_id == trace_id and s.service == "fulfilment" and "insert" in s.name)
    otlp.wait_for(lambda s: s.trace_id == trace_id and s.service == "gateway")
    spans = otlp.trace(trace_id)
    text = repr([(s.name, s.attributes) for s in spans])
    assert not any(code in text or code.split("-", 1)[1] in text for code in codes)
    docs = list(vault_db.card_keys.find({"sku_id": sku_id}))
    assert len(docs) == 5
    raw = b"".join(bson.encode(d) for d in docs)
    for code in codes:
        assert code.encode() not in raw
        assert code.split("-", 1)[1].encode() not in raw
    for doc in docs:
        assert doc["kid"] == "dev1" and len(doc["nonce"]) == 12 and len(doc["ct"]) > len(codes[0])
        assert (doc["expires_at"] - doc["imported_at"]).days == 30
    # Nor in the import record, the outbox, the topic or the service's log.
    everything = b"".join(bson.encode(d) for c in ("imports", "outbox", "inbox") for d in vault_db[c].find())
    records = asyncio.run(scan(infra["KAFKA_BOOTSTRAP_SERVERS"], ["fulfilment.events"]))
    everything += b"".join(r.value for r in records)
    everything += platform.processes["fulfilment"].log_path.read_bytes()
    everything += platform.processes["gateway"].log_path.read_bytes()
    assert not any(code.encode() in everything for code in codes)


def _job_done(gateway: httpx.Client, r: httpx.Response) -> dict[str, Any]:
    """A large upload is a job (202): poll it, however long the machine takes."""
    assert r.status_code == 202, r.text
    url = r.json()["status_url"]

    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = gateway.get(url, headers=ADMIN).json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_until(done, timeout=300, interval=0.5, message="the import job")


def test_ten_thousand_keys_in_one_upload(gateway: httpx.Client, category: str, vault_db: Any) -> None:
    product_id, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    text = "\n".join(f"BULK-{tag}-{i:05d},PW{i:05d}" for i in range(10_000))
    job = _job_done(gateway, import_text(gateway, sku_id, text))
    assert (job["status"], job["accepted"], job["duplicates"], job["invalid"]) == ("succeeded", 10_000, 0, [])
    settle(vault_db, sku_id)
    assert stock(gateway, sku_id)["available"] == stock(gateway, sku_id)["supply"] == 10_000
    assert catalog_stock(gateway, product_id) == "in_stock"
    # The same size as an uploaded CSV file (GB18030, as a Chinese spreadsheet saves it).
    csv = "卡号,密码\r\n" + "\r\n".join(f"卡-{tag}-{i:05d},密-{i:05d}" for i in range(10_000))
    r = gateway.post(
        f"/api/v1/admin/skus/{sku_id}/card-keys",
        files={"file": ("keys.csv", csv.encode("gb18030"), "text/csv")},
        headers=ADMIN,
    )
    job = _job_done(gateway, r)
    assert job["status"] == "succeeded" and job["accepted"] == 10_000, job
    settle(vault_db, sku_id)
    assert stock(gateway, sku_id)["supply"] == 20_000


def test_stock_survives_redis_loss_rebuild_and_restart(
    gateway: httpx.Client, category: str, vault_db: Any, rds: redis.Redis, platform: Platform, infra: dict[str, str]
) -> None:
    product_id, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    assert import_text(gateway, sku_id, "\n".join(f"R-{tag}-{i}" for i in range(7))).json()["accepted"] == 7
    keys = gateway.get(f"/api/v1/admin/skus/{sku_id}/card-keys", params={"status": "available"}, headers=ADMIN).json()
    assert keys["total"] == 7 and "code" not in keys["items"][0] and "ct" not in keys["items"][0]
    victim = keys["items"][0]["key_id"]
    r = gateway.post(f"/api/v1/admin/skus/{sku_id}/card-keys/{victim}/disable", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"key_id": victim, "status": "disabled"}
    assert gateway.post(f"/api/v1/admin/skus/{sku_id}/card-keys/{victim}/disable", headers=ADMIN).status_code == 200
    assert gateway.post(f"/api/v1/admin/skus/{sku_id}/card-keys/nope/disable", headers=ADMIN).status_code == 404
    after_disable = stock(gateway, sku_id)
    assert (after_disable["available"], after_disable["disabled"], after_disable["supply"]) == (6, 1, 6)
    settle(vault_db, sku_id)

    # Redis loses the SKU's keys (op markers too) while the disable's event is still to come:
    # the handler rebuilds from the vault instead of starting a counter at -1.
    disabled = vault_db.outbox.find_one({"key": sku_id, "type": "fulfilment.key-disabled"})
    rds.delete(*rds.keys(f"inv:{{{sku_id}}}:*"))
    copy = msgspec.structs.replace(decode_envelope(bytes(disabled["value"])), event_id=new_id())
    _publish(infra, "fulfilment.events", sku_id.encode(), encode_envelope(copy), [("event_id", copy.event_id.encode())])
    wait_until(lambda: vault_db.inbox.find_one({"_id": f"fulfilment.remove_disabled_supply:{copy.event_id}"}))
    assert stock(gateway, sku_id)["supply"] == 6

    # Redis loses the SKU's counters: stock reads as empty until a rebuild.
    rds.delete(*rds.keys(f"inv:{{{sku_id}}}:*"))
    assert stock(gateway, sku_id)["supply"] == 0 and catalog_stock(gateway, product_id) == "out_of_stock"
    r = gateway.post(f"/api/v1/admin/skus/{sku_id}/stock/rebuild", headers=ADMIN)
    assert r.status_code == 200 and r.json()["supply"] == 6 and r.json()["available"] == 6
    assert catalog_stock(gateway, product_id) == "low"

    # Redis restarted empty: the service rebuilds missing counters when it starts.
    rds.delete(*rds.keys(f"inv:{{{sku_id}}}:*"))
    platform.restart("fulfilment")
    # Late in the suite the vault holds every earlier test's keys (100,000 from the import jobs):
    # the rebuild on start counts them all, so give it time on a loaded machine.
    wait_until(lambda: stock(gateway, sku_id)["supply"] == 6, timeout=120, message="supply rebuilt on start")


def _imported_event(infra: dict[str, str], batch_id: str) -> Any:
    records = asyncio.run(scan(infra["KAFKA_BOOTSTRAP_SERVERS"], ["fulfilment.events"]))
    for record in records:
        envelope = decode_envelope(record.value)
        if envelope.type == "fulfilment.keys-imported" and msgspec.json.decode(envelope.data)["batch_id"] == batch_id:
            return record
    return None


def _publish(infra: dict[str, str], topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"])
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_redelivered_import_event_never_counts_twice(
    gateway: httpx.Client, category: str, vault_db: Any, rds: redis.Redis, infra: dict[str, str]
) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    tag = new_id()[:8]
    batch_id = import_text(gateway, sku_id, "\n".join(f"E-{tag}-{i}" for i in range(9))).json()["batch_id"]
    record = wait_until(lambda: _imported_event(infra, batch_id), message="keys-imported on the topic")
    handler = "fulfilment.add_imported_supply"
    original = decode_envelope(record.value)
    wait_until(lambda: vault_db.inbox.find_one({"_id": f"{handler}:{original.event_id}"}), message="handled once")
    assert stock(gateway, sku_id)["supply"] == 9

    def redeliver() -> str:
        """The same event once more (the inbox stops it) and as a copy with a new event id, as a
        replayed dead letter or a producer retry after a lost ack would be (the op marker stops it)."""
        copy = msgspec.structs.replace(original, event_id=new_id())
        headers = [(k, v) for k, v in record.headers if k != "event_id"]
        _publish(infra, record.topic, record.key, record.value, list(record.headers))
        _publish(
            infra, record.topic, record.key, encode_envelope(copy), [*headers, ("event_id", copy.event_id.encode())]
        )
        wait_until(lambda: vault_db.inbox.find_one({"_id": f"{handler}:{copy.event_id}"}), message="copy handled")
        return copy.event_id

    redeliver()
    assert stock(gateway, sku_id)["supply"] == 9

    # After Redis lost everything and a rebuild, a late redelivery still adds nothing.
    rds.delete(*rds.keys(f"inv:{{{sku_id}}}:*"))
    rebuilt = gateway.post(f"/api/v1/admin/skus/{sku_id}/stock/rebuild", headers=ADMIN)
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["supply"] == 9
    redeliver()
    assert stock(gateway, sku_id) | {"sku_id": None} == {
        "sku_id": None,
        "available": 9,
        "reserved": 0,
        "sold": 0,
        "disabled": 0,
        "expired": 0,
        "supply": 9,
        "sellable": 9,
    }


def test_bad_imports_are_problems_and_change_nothing(gateway: httpx.Client, category: str, vault_db: Any) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    body = f"K-{new_id()}"
    assert import_text(gateway, sku_id, body, headers={}).status_code == 401
    assert import_text(gateway, sku_id, body, headers=auth()).status_code == 403
    assert import_text(gateway, "no-such-sku", body).status_code == 404
    empty = import_text(gateway, sku_id, "\n  \n")
    assert empty.status_code == 422 and empty.headers["content-type"].startswith("application/problem+json")
    r = gateway.post(f"/api/v1/admin/skus/{sku_id}/card-keys", json={"keys": [body]}, headers=ADMIN)
    assert r.status_code == 415
    r = gateway.post(f"/api/v1/admin/skus/{sku_id}/card-keys", files={"other": ("k.txt", body.encode())}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    _, direct = new_sku(
        gateway, category, vault_db, delivery_mode="direct", recipient_fields=[{"name": "mobile", "label": "手机号"}]
    )
    r = import_text(gateway, direct, body)
    assert r.status_code == 409 and r.json()["type"].endswith("/not-a-card-key-sku")
    assert vault_db.card_keys.count_documents({"sku_id": {"$in": [sku_id, direct]}}) == 0
    assert stock(gateway, sku_id)["supply"] == 0
    # Staff may import (the admin role is needed to disable or rebuild).
    staff = auth(roles=("staff",))
    assert import_text(gateway, sku_id, body, headers=staff).json()["accepted"] == 1
    assert gateway.post(f"/api/v1/admin/skus/{sku_id}/stock/rebuild", headers=staff).status_code == 403


def test_disable_by_codes_takes_keys_out_of_stock_once(gateway: httpx.Client, category: str, vault_db: Any) -> None:
    _, sku_id = new_sku(gateway, category, vault_db)
    codes = [f"VOID-{new_id()}" for _ in range(4)]
    assert import_text(gateway, sku_id, "\n".join(codes)).json()["accepted"] == 4
    path = f"/api/v1/admin/skus/{sku_id}/card-keys/disable"
    body = {"codes": [codes[0], "NEVER-IMPORTED", f"  {codes[2]} ", codes[0]]}
    r = gateway.post(path, json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {"disabled": [0, 2], "already_disabled": [3], "sold": [], "not_found": [1]}
    assert codes[0] not in r.text
    after = stock(gateway, sku_id)
    assert (after["available"], after["disabled"], after["supply"]) == (2, 2, 2)
    again = gateway.post(path, json=body, headers=ADMIN).json()
    assert again == {"disabled": [], "already_disabled": [0, 2, 3], "sold": [], "not_found": [1]}
    assert stock(gateway, sku_id)["supply"] == 2
    assert gateway.post(path, json={"codes": []}, headers=ADMIN).status_code == 422
    assert gateway.post(path, json=body, headers=auth(roles=("staff",))).status_code == 403
    assert stock(gateway, sku_id)["supply"] == 2
