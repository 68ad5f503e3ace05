"""Whole-platform flows for end-to-end tests and benchmarks, through the gateway's public API
(and, where a test stands in for another system, the bus): set up a SKU with card keys, open and
fund buyers, place orders and wait for them to settle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import encode_envelope, new_id
from shared.contracts.identity import UserRegistered
from shared.messaging.outbox import build_envelope
from tests.helpers import auth

FINAL = {"delivered", "refunded", "cancelled", "expired"}


class Flows:
    def __init__(self, gateway_url: str, bootstrap_servers: str, *, concurrency: int = 100) -> None:
        self.gateway_url = gateway_url
        self.bootstrap = bootstrap_servers
        self.admin = auth(roles=("admin", "staff"), level="retail")
        self.client = httpx.AsyncClient(
            base_url=gateway_url, timeout=60, limits=httpx.Limits(max_connections=concurrency, keepalive_expiry=2)
        )
        self.limit = asyncio.Semaphore(concurrency)
        # Setting buyers up is not what a test measures: a few at a time keeps every request well
        # inside the gateway's timeout on a two-core machine.
        self.setup_limit = asyncio.Semaphore(16)

    async def close(self) -> None:
        await self.client.aclose()

    async def call(
        self, method: str, path: str, *, expect: int | Iterable[int] | None = None, **kwargs: Any
    ) -> httpx.Response:
        async with self.limit:
            response = await self.client.request(method, path, **kwargs)
        wanted = {expect} if isinstance(expect, int) else set(expect or ())
        if wanted and response.status_code not in wanted:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response

    # -- catalog and vault -----------------------------------------------------------------

    async def create_sku(
        self,
        *,
        name: str = "100元",
        price_cents: int = 1000,
        face_value_cents: int = 10000,
        delivery_mode: str = "auto",
        prices: dict[str, int] | None = None,
        recipient_fields: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        tag = new_id()[:6]
        a = self.admin
        scenario = (
            await self.call("POST", "/api/v1/admin/scenarios", json={"name": f"通信充值 {tag}"}, headers=a, expect=201)
        ).json()["scenario_id"]
        category = (
            await self.call(
                "POST",
                "/api/v1/admin/categories",
                json={"scenario_id": scenario, "name": f"话费充值 {tag}"},
                headers=a,
                expect=201,
            )
        ).json()["category_id"]
        product = (
            await self.call(
                "POST",
                "/api/v1/admin/products",
                json={"category_id": category, "name": f"中国移动 {tag}"},
                headers=a,
                expect=201,
            )
        ).json()["product_id"]
        body = {
            "name": name,
            "face_value_cents": face_value_cents,
            "prices": prices or {"retail": price_cents},
            "delivery_mode": delivery_mode,
            "recipient_fields": recipient_fields or [],
            "on_sale": True,
            **extra,
        }
        sku_id: str = (
            await self.call("POST", f"/api/v1/admin/products/{product}/skus", json=body, headers=a, expect=201)
        ).json()["sku_id"]
        return sku_id

    async def import_keys(self, sku_id: str, codes: list[str]) -> dict[str, Any]:
        """Import at once: the vault waits for a SKU the catalog has just made (issue 12)."""
        response = await self.call(
            "POST",
            f"/api/v1/admin/skus/{sku_id}/card-keys",
            content="\n".join(codes),
            headers={**self.admin, "content-type": "text/plain"},
        )
        if response.status_code != 200:
            raise AssertionError(f"import into {sku_id} -> {response.status_code}: {response.text[:300]}")
        return response.json()  # type: ignore[no-any-return]

    async def wait_orderable(self, sku_id: str, units: int, timeout: float = 30) -> None:
        """Until the order service knows the SKU and the stock shows `units` sellable."""
        buyer = auth()
        deadline = time.monotonic() + timeout
        while True:
            quote = await self.call(
                "POST", "/api/v1/orders/quote", json={"sku_id": sku_id, "quantity": 1}, headers=buyer
            )
            stock = await self.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=self.admin)
            if (
                quote.status_code == 200
                and stock.status_code == 200
                and stock.json()["available"] - stock.json().get("reserved", 0) >= units
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"SKU {sku_id} not orderable: {quote.text} / {stock.text}")
            await asyncio.sleep(0.2)

    # -- buyers ------------------------------------------------------------------------------

    async def open_accounts(self, user_ids: list[str]) -> None:
        """Stand in for identity: announce the buyers on the bus, as registration does."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for user_id in user_ids:
                env = build_envelope(
                    UserRegistered(user_id=user_id, email=f"{user_id}@buyers.test"), producer="identity"
                )
                await producer.send(
                    UserRegistered.__topic__,
                    encode_envelope(env),
                    key=user_id.encode(),
                    headers=[("event_id", env.event_id.encode()), ("event_type", env.type.encode())],
                )
            await producer.flush()
        finally:
            await producer.stop()

    async def balance(self, user_id: str) -> int | None:
        wallet = (await self.call("GET", "/api/v1/wallet", headers=auth(user_id), expect=200)).json()
        if not wallet.get("opened", True):
            return None  # the wallet has not opened the account yet
        return int(wallet["balance_cents"])

    async def fund(self, user_id: str, amount_cents: int) -> None:
        """A bank-transfer top-up approved by staff (the quickest real way money enters)."""
        topup = (
            await self.call(
                "POST",
                "/api/v1/wallet/topups",
                json={"amount_cents": amount_cents, "channel": "bank"},
                headers=auth(user_id),
                expect=201,
            )
        ).json()
        await self.call(
            "POST",
            f"/api/v1/admin/topups/{topup['topup_id']}/approve",
            json={"note": "test funding"},
            headers=self.admin,
            expect=200,
        )

    async def new_buyers(self, count: int, amount_cents: int, timeout: float | None = None) -> list[str]:
        """`count` buyers with open wallet accounts, each funded by one approved bank top-up. The
        default budget grows with the count (a top-up each, about 7/s on a busy two-core machine):
        it is setup, not what a test measures."""
        users = [new_id() for _ in range(count)]
        await self.open_accounts(users)
        deadline = time.monotonic() + (timeout if timeout is not None else max(120.0, 0.3 * count))
        while await self.balance(users[-1]) is None:
            if time.monotonic() > deadline:
                raise AssertionError("the wallet did not open the buyers' accounts")
            await asyncio.sleep(0.2)
        await asyncio.gather(*(self._fund_when_open(u, amount_cents, deadline) for u in users))
        return users

    async def _fund_when_open(self, user_id: str, amount_cents: int, deadline: float) -> None:
        async with self.setup_limit:
            while await self.balance(user_id) is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no wallet account for {user_id}")
                await asyncio.sleep(0.2)
            if amount_cents:
                await self.fund(user_id, amount_cents)

    async def manual_task(self, order_id: str, action: str, *, expect: int | None = 200, **body: str) -> httpx.Response:
        """Staff end a manual-delivery task: `complete` (content=...) or `fail` (reason=...)."""
        return await self.call(
            "POST", f"/api/v1/admin/manual-tasks/{order_id}/{action}", json=body, headers=self.admin, expect=expect
        )

    # -- orders ------------------------------------------------------------------------------

    async def order(
        self, user_id: str, sku_id: str, quantity: int = 1, *, idempotency_key: str | None = None, **body: Any
    ) -> httpx.Response:
        headers = auth(user_id)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return await self.call(
            "POST", "/api/v1/orders", json={"sku_id": sku_id, "quantity": quantity, **body}, headers=headers
        )

    async def get_order(self, user_id: str, order_id: str) -> dict[str, Any]:
        response = await self.call("GET", f"/api/v1/orders/{order_id}", headers=auth(user_id), expect=200)
        return response.json()  # type: ignore[no-any-return]

    async def wait_final(
        self, user_id: str, order_id: str, timeout: float = 60, final: set[str] = FINAL, interval: float = 0.1
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = await self.get_order(user_id, order_id)
            if order["status"] in final:
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} stuck in {order['status']}: {order}")
            await asyncio.sleep(interval)

    async def card_keys(self, user_id: str, order_id: str) -> list[str]:
        response = await self.call("GET", f"/api/v1/orders/{order_id}/card-keys", headers=auth(user_id), expect=200)
        return [k["code"] for k in response.json()["card_keys"]]
