"""`python -m deploy.demo [GATEWAY_URL]`: walk a buyer's journey on a running platform (`make dev`),
through the public API only, printing each step.

The admin signs in and puts a product on sale with five card keys; a new buyer registers, tops up
¥200 through the (simulated) payment provider, previews and places an order paid from the balance,
and reads the card key that was delivered within seconds.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import httpx


def main() -> int:
    base = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")).rstrip("/")
    tag = uuid.uuid4().hex[:6]
    with httpx.Client(base_url=base, timeout=30) as api:

        def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = api.request(method, path, headers=headers, **kwargs)
            if r.status_code >= 400:
                raise SystemExit(f"{method} {path} -> {r.status_code}: {r.text}")
            return r.json() if r.content else None

        def step(text: str) -> None:
            print(f"\n== {text}", flush=True)

        step("the admin signs in")
        admin = call(
            "POST",
            "/api/v1/auth/login",
            json={
                "login": os.environ.get("KAMENG_ADMIN_EMAIL", "admin@kameng.local"),
                "password": os.environ.get("KAMENG_ADMIN_PASSWORD", "kameng-dev-admin-2026"),
            },
        )["access_token"]

        step("and puts 通信充值 → 话费充值 → 中国移动 100 元 on sale, with five card keys")
        scenario = call("POST", "/api/v1/admin/scenarios", admin, json={"name": f"通信充值 {tag}"})["scenario_id"]
        category = call("POST", "/api/v1/admin/categories", admin, json={"scenario_id": scenario, "name": "话费充值"})[
            "category_id"
        ]
        product = call(
            "POST",
            "/api/v1/admin/products",
            admin,
            json={"category_id": category, "name": "中国移动话费卡", "service_notes": "自动发货, 有效期 1 年"},
        )
        sku = call(
            "POST",
            f"/api/v1/admin/products/{product['product_id']}/skus",
            admin,
            json={
                "name": "100 元",
                "face_value_cents": 10000,
                "prices": {"retail": 9850, "vip": 9700, "agent": 9600},
                "delivery_mode": "auto",
                "validity_days": 365,
                "on_sale": True,
            },
        )["sku_id"]
        keys = "\n".join(f"CMCC-{tag.upper()}-{i:04d},PIN{uuid.uuid4().hex[:10].upper()}" for i in range(5))
        for _ in range(50):  # the vault learns of the new SKU a moment later
            r = api.post(
                f"/api/v1/admin/skus/{sku}/card-keys",
                content=keys,
                headers={"Authorization": f"Bearer {admin}", "content-type": "text/plain"},
            )
            if r.status_code != 404:
                break
            time.sleep(0.2)
        print("  import:", r.json())

        step("a buyer registers and signs in")
        email, password = f"buyer-{tag}@kameng.local", f"demo-{uuid.uuid4().hex}"
        call("POST", "/api/v1/auth/register", json={"email": email, "password": password})
        buyer = call("POST", "/api/v1/auth/login", json={"login": email, "password": password})["access_token"]

        step("tops up ¥200 (充值) and pays at the provider")
        for _ in range(50):  # the wallet opens the account when it hears of the registration
            if call("GET", "/api/v1/wallet", buyer).get("opened", True):
                break
            time.sleep(0.2)
        topup = call("POST", "/api/v1/wallet/topups", buyer, json={"amount_cents": 20000, "channel": "alipay"})
        api.post(topup["pay_url"], json={"result": "success"})
        for _ in range(100):
            if call("GET", f"/api/v1/wallet/topups/{topup['topup_id']}", buyer)["status"] == "succeeded":
                break
            time.sleep(0.2)
        print("  wallet:", call("GET", "/api/v1/wallet", buyer))

        step("previews the order (信息预览) and places it, paid from the balance")
        print("  quote:", call("POST", "/api/v1/orders/quote", buyer, json={"sku_id": sku, "quantity": 1}))
        order = call("POST", "/api/v1/orders", buyer, json={"sku_id": sku, "quantity": 1, "pay_with": "balance"})
        print("  order:", order)
        for _ in range(100):
            detail = call("GET", f"/api/v1/orders/{order['order_id']}", buyer)
            if detail["status"] in ("delivered", "refunded", "cancelled"):
                break
            time.sleep(0.1)
        print("  history:", [(h["status"], h["at"]) for h in detail["history"]])

        step("and reads the card key in the order center")
        print("  card keys:", call("GET", f"/api/v1/orders/{order['order_id']}/card-keys", buyer)["card_keys"])
        print("  balance left:", call("GET", "/api/v1/wallet", buyer)["balance_cents"], "cents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
