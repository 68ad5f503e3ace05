"""Setup data for browser tests through the public admin API (as staff would make it), and small
helpers the tests share. The browser itself only ever talks to the storefront."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from deploy.services import DEV_DEFAULTS


def tag() -> str:
    return uuid.uuid4().hex[:6]


class AdminApi:
    """The bootstrap admin (KAMENG_ADMIN_EMAIL) signed in through the public API."""

    def __init__(self, gateway_url: str) -> None:
        self.http = httpx.Client(base_url=gateway_url, timeout=30)
        tokens = self.call(
            "POST",
            "/api/v1/auth/login",
            json={"login": DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], "password": DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"]},
            expect=200,
            auth=False,
        )
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, expect: int | None = None, auth: bool = True, **kwargs: Any) -> Any:
        headers = {**(self.headers if auth else {}), **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:400]}")
        return response.json() if response.content else None

    def product(
        self,
        *,
        scenario: str | None = None,
        category: str | None = None,
        name: str | None = None,
        sku_name: str = "100元",
        price_cents: int = 9850,
        face_value_cents: int = 10000,
        delivery_mode: str = "auto",
        recipient_fields: list[dict[str, Any]] | None = None,
        keys: list[str] | None = None,
        **sku: Any,
    ) -> dict[str, str]:
        """scenario → category → product → SKU (+ card keys, waiting until it can be ordered)."""
        t = tag()
        scenario_id = self.call(
            "POST", "/api/v1/admin/scenarios", json={"name": scenario or f"通信充值 {t}"}, expect=201
        )["scenario_id"]
        category_id = self.call(
            "POST",
            "/api/v1/admin/categories",
            json={"scenario_id": scenario_id, "name": category or f"话费充值 {t}"},
            expect=201,
        )["category_id"]
        product_id = self.call(
            "POST",
            "/api/v1/admin/products",
            json={
                "category_id": category_id,
                "name": name or f"中国移动话费 {t}",
                "description": "全国通用，自动发货",
                "service_notes": "卡密有效期内使用；充值失败可申请售后。",
            },
            expect=201,
        )["product_id"]
        sku_id = self.call(
            "POST",
            f"/api/v1/admin/products/{product_id}/skus",
            json={
                "name": sku_name,
                "face_value_cents": face_value_cents,
                "prices": {"retail": price_cents},
                "delivery_mode": delivery_mode,
                "recipient_fields": recipient_fields or [],
                "validity_days": 365,
                "on_sale": True,
                **sku,
            },
            expect=201,
        )["sku_id"]
        if keys:
            self.import_keys(sku_id, keys)
        # The order service learns of the SKU from catalog's event a moment later: until then a
        # quote is 404. 422 (a recipient field missing) means it knows the SKU.
        eventually(
            lambda: (
                self.http.post(
                    "/api/v1/orders/quote", json={"sku_id": sku_id, "quantity": 1}, headers=self.headers
                ).status_code
                in (200, 422)
            ),
            message="the order service knows the SKU",
        )
        return {
            "scenario_id": scenario_id,
            "category_id": category_id,
            "product_id": product_id,
            "sku_id": sku_id,
            "tag": t,
        }

    def import_keys(self, sku_id: str, codes: list[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.post(
                f"/api/v1/admin/skus/{sku_id}/card-keys",
                content="\n".join(codes),
                headers={**self.headers, "content-type": "text/plain"},
            )
            if response.status_code == 200:
                break
            # The vault learns of a new SKU from catalog's event a moment later.
            if response.status_code != 404 or time.monotonic() > deadline:
                raise AssertionError(f"import -> {response.status_code}: {response.text[:300]}")
            time.sleep(0.2)
        while True:
            stock = self.call("GET", f"/api/v1/admin/skus/{sku_id}/stock")
            if stock and stock.get("available", 0) >= len(codes):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"stock of {sku_id} never showed the keys: {stock}")
            time.sleep(0.2)


def eventually(fn: Any, *, timeout: float = 30, interval: float = 0.3, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


class BuyerApi:
    """A buyer made through the public API (for tests whose subject is not signing up); with
    `register=False`, an account that exists already (e.g. signed up in the browser)."""

    def __init__(self, gateway_url: str, login: str, password: str, *, register: bool = True) -> None:
        self.http = httpx.Client(base_url=gateway_url, timeout=30)
        self.login = login
        self.password = password
        if register:
            r = self.http.post("/api/v1/auth/register", json={"email": login, "password": password})
            assert r.status_code == 201, r.text
        tokens = self.http.post("/api/v1/auth/login", json={"login": login, "password": password}).json()
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def close(self) -> None:
        self.http.close()

    def top_up(self, amount_cents: int) -> None:
        """Through the simulated provider, as a buyer paying at pay_url would."""

        def started() -> Any:
            r = self.http.post(
                "/api/v1/wallet/topups", json={"amount_cents": amount_cents, "channel": "alipay"}, headers=self.headers
            )
            return r.json() if r.status_code == 201 else None  # 409 until the wallet account is open

        topup = eventually(started, message="wallet account open")
        paid = httpx.post(topup["pay_url"], json={"result": "success"}, timeout=10)
        assert paid.status_code == 200, paid.text
        eventually(
            lambda: self.http.get("/api/v1/wallet", headers=self.headers).json()["balance_cents"] >= amount_cents,
            message="top-up credited",
        )

    def order(self, sku_id: str, recipient: dict[str, str] | None = None) -> str:
        r = self.http.post(
            "/api/v1/orders",
            json={"sku_id": sku_id, "quantity": 1, "recipient": recipient or {}, "pay_with": "balance"},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text
        order_id: str = r.json()["order_id"]
        eventually(
            lambda: self.http.get(f"/api/v1/orders/{order_id}", headers=self.headers).json()["status"] == "delivered",
            message="order delivered",
        )
        return order_id

    def ticket(self, order_id: str, description: str) -> str:
        r = self.http.post(
            "/api/v1/tickets",
            json={"order_id": order_id, "kind": "invalid_key", "description": description},
            headers=self.headers,
        )
        assert r.status_code == 201, r.text
        ticket_id: str = r.json()["ticket_id"]
        return ticket_id


# A valid 1x1 PNG: the evidence a buyer uploads.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc00000030101005d2a2b5b0000000049454e44ae426082"
)
