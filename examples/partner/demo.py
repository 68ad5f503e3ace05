"""`make partner-demo` (with `make dev` running in another terminal): a partner's first five minutes.

1. (the platform's side) the admin puts a product with card keys on sale;
2. a partner registers, tops up, creates an API key: its own topic is opened;
3. it asks `GET /api/v1/partner/feed` where to read, starts the aiokafka consumer (consumer.py)
   and a webhook receiver (webhook_receiver.py), and registers the webhook;
4. places two orders with signed requests; both channels see each change once;
5. asks for a replay of the last ten minutes: the same `event_id`s arrive again, none applied twice;
6. a forged webhook call is refused.

    python -m examples.partner.demo [GATEWAY_URL]     (default http://127.0.0.1:8000)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from examples.partner.consumer import FeedConsumer, OrderBook
from examples.partner.kameng_api import PartnerApi
from examples.partner.webhook_receiver import WebhookReceiver

FINAL = {"delivered", "refunded", "cancelled", "expired"}


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def ok(r: httpx.Response, *expected: int) -> Any:
    if r.status_code not in (expected or (200, 201)):
        raise SystemExit(f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text}")
    return r.json() if r.content else None


def until(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def product_on_sale(api: httpx.Client, tag: str) -> str:
    """What the platform's admin does: a 10-yuan card with ten keys (not a partner's job)."""
    admin = ok(
        api.post(
            "/api/v1/auth/login",
            json={
                "login": os.environ.get("KAMENG_ADMIN_EMAIL", "admin@kameng.local"),
                "password": os.environ.get("KAMENG_ADMIN_PASSWORD", "kameng-dev-admin-2026"),
            },
        )
    )["access_token"]
    a = {"Authorization": f"Bearer {admin}"}
    scenario = ok(api.post("/api/v1/admin/scenarios", json={"name": f"游戏点卡 {tag}"}, headers=a))["scenario_id"]
    category = ok(api.post("/api/v1/admin/categories", json={"scenario_id": scenario, "name": "点卡"}, headers=a))
    product = ok(
        api.post("/api/v1/admin/products", json={"category_id": category["category_id"], "name": "示例点卡"}, headers=a)
    )
    sku: str = ok(
        api.post(
            f"/api/v1/admin/products/{product['product_id']}/skus",
            json={
                "name": "10 元",
                "face_value_cents": 1000,
                "prices": {"retail": 990},
                "delivery_mode": "auto",
                "on_sale": True,
            },
            headers=a,
        )
    )["sku_id"]
    keys = "\n".join(f"DEMO-{tag.upper()}-{i:04d}" for i in range(10))

    def imported() -> bool:  # the vault hears of the new SKU a moment later
        r = api.post(f"/api/v1/admin/skus/{sku}/card-keys", content=keys, headers={**a, "content-type": "text/plain"})
        return r.status_code == 200

    until(imported, "the card-key import")
    return sku


def onboard(api: httpx.Client, base: str, tag: str) -> PartnerApi:
    """A partner account with money and an API key: what a partner does once, in the console."""
    step("a partner registers, tops up ¥100 and creates an API key")
    email, password = f"partner-{tag}@example.com", f"demo-{uuid.uuid4().hex}"
    ok(api.post("/api/v1/auth/register", json={"email": email, "password": password}))
    token = ok(api.post("/api/v1/auth/login", json={"login": email, "password": password}))["access_token"]
    me = {"Authorization": f"Bearer {token}"}
    until(lambda: ok(api.get("/api/v1/wallet", headers=me)).get("opened", True), "the wallet account")
    topup = ok(api.post("/api/v1/wallet/topups", json={"amount_cents": 10000, "channel": "alipay"}, headers=me))
    api.post(topup["pay_url"], json={"result": "success"})
    until(lambda: ok(api.get("/api/v1/wallet", headers=me))["balance_cents"] >= 10000, "the top-up")
    key = ok(api.post("/api/v1/me/api-keys", json={"name": "quickstart"}, headers=me))
    print("  key:", key["key_id"], "(the secret is shown once; keep it safe)")
    return PartnerApi(base, key["key_id"], key["secret"])


def forge(url: str) -> int:
    """Someone who does not know the secret calls the webhook."""
    return httpx.post(url, content=b'{"event_id": "x"}', headers={"X-Kameng-Signature": "0" * 64}).status_code


async def run(partner: PartnerApi, sku: str, tag: str) -> int:
    step("GET /api/v1/partner/feed: where this partner reads")
    feed = until(lambda: (r := partner.get("/api/v1/partner/feed")).status_code == 200 and r.json(), "the feed")
    for k, v in feed.items():
        print(f"  {k}: {v}")

    book = OrderBook()
    consumer = FeedConsumer(feed, book, name="quickstart")
    await consumer.start()
    hook_book = OrderBook()
    receiver = WebhookReceiver(hook_book).start()
    try:
        step(f"a webhook to {receiver.url} (signature checked, deduplicated)")
        hook = ok(partner.post("/api/v1/partner/webhooks", {"url": receiver.url, "events": ["order.status-changed"]}))
        receiver.secret = hook["secret"]

        step("two orders, placed with signed requests")
        started = datetime.now(UTC)
        orders = []
        for n in range(2):
            placed = ok(
                partner.post(
                    "/api/v1/orders",
                    {"sku_id": sku, "quantity": 1},
                    headers={"Idempotency-Key": f"quickstart-{tag}-{n}"},
                )
            )
            orders.append(placed["order_id"])
            print("  order:", placed["order_id"], placed["status"])

        step("the consumer and the webhook see every change, once")
        # Generous: on a busy machine a webhook that failed once waits out its retry backoff.
        deadline = time.monotonic() + 150
        while not all(book.status.get(o) in FINAL and hook_book.status.get(o) in FINAL for o in orders):
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: kafka {book.status}, webhook {hook_book.status}")
            await consumer.poll(500)
        for event in book.applied:
            print(f"  kafka   {event['order_id'][:12]} {event['status']:<16} {event['event_id']}")
        print(f"  webhook {len(hook_book.applied)} event(s) applied, {hook_book.duplicates} repeat(s) skipped")

        step("a replay of the last ten minutes: the same event_ids again, applied once")
        since = (started - timedelta(minutes=10)).isoformat()
        replay = ok(partner.post("/api/v1/partner/feed/replay", {"since": since}), 202)
        print("  replay:", replay["replay_id"], replay["status"], replay["events"], "event(s)")
        before = len(consumer.received)
        wanted = before + replay["events"]
        deadline = time.monotonic() + 60
        while len(consumer.received) < wanted:
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the replayed events")
            await consumer.poll(500)
        again = {e["event_id"] for e in consumer.received[before:]}
        print(f"  {len(again)} event(s) received again, all known: {again <= book.seen}; applied: {len(book.applied)}")

        step("a forged webhook call is refused")
        print("  forged call ->", forge(receiver.url), f"(rejected so far: {receiver.rejected})")
    finally:
        await consumer.stop()
        receiver.stop()
    return 0


def main() -> int:
    base = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")).rstrip("/")
    tag = uuid.uuid4().hex[:6]
    with httpx.Client(base_url=base, timeout=30) as api:
        step("the platform puts a product on sale (admin)")
        sku = product_on_sale(api, tag)
        partner = onboard(api, base, tag)
    try:
        return asyncio.run(run(partner, sku, tag))
    finally:
        partner.close()


if __name__ == "__main__":
    sys.exit(main())
