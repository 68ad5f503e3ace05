"""Read-your-writes across services (issue 12): each next step, taken at once, with no sleep
between the steps, through the gateway on the real stack.

- register, then top up right away: the wallet opens the account on first use (identity's
  event may come before or after; one account, one `wallet.account-opened`);
- an admin changes a buyer's level or roles: the buyer's very next request, with the token
  issued before the change, is priced and authorised by the new values.

(The other two seams of the issue, importing keys right after creating a SKU and ordering a SKU
right after the catalog shows it, live in fulfilment and order.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pytest

from tests.e2e import catalog_kit
from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import admin_headers, new_account, outbox_events
from tests.helpers import wait_until

gateway = kit.gateway
identity_db = kit.identity_db


@pytest.fixture(scope="module")
def wallet_db(infra: dict[str, str]) -> Iterator[Any]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(infra["MONGODB_URL"], tz_aware=True)
    yield client["kameng_wallet"]
    client.close()


def test_register_then_top_up_at_once(gateway: httpx.Client, identity_db: Any, wallet_db: Any) -> None:
    user_id, _, headers = new_account(gateway)
    r = gateway.post("/api/v1/wallet/topups", json={"amount_cents": 5000, "channel": "alipay"}, headers=headers)
    assert r.status_code == 201, r.text
    paid = httpx.post(r.json()["pay_url"], json={"result": "success"})
    assert paid.status_code == 200, paid.text
    wallet = wait_until(
        lambda: (w := gateway.get("/api/v1/wallet", headers=headers).json())["balance_cents"] == 5000 and w,
        message="the top-up credited",
    )
    assert wallet["opened"] is True

    # identity's event arrives too (before or after the top-up): it finds the account open.
    [registered] = outbox_events(identity_db, "identity.user-registered", user_id)
    wait_until(
        lambda: wallet_db.inbox.find_one({"_id": {"$regex": f":{registered['_id']}$"}}),
        message="the wallet applied identity.user-registered",
    )
    opened = list(wallet_db.outbox.find({"type": "wallet.account-opened", "key": user_id}))
    assert len(opened) == 1
    assert gateway.get("/api/v1/wallet", headers=headers).json()["balance_cents"] == 5000


def test_a_level_change_prices_the_very_next_request(gateway: httpx.Client) -> None:
    _, category_id = catalog_kit.tree_path(gateway, "话费", "移动")
    product_id = catalog_kit.product(gateway, category_id, "移动话费 seams")
    catalog_kit.sku(gateway, product_id, prices={"retail": 9900, "vip": 9700})
    user_id, _, headers = new_account(gateway)
    admin = admin_headers(gateway)

    def price() -> int:
        r = gateway.get(f"/api/v1/catalog/products/{product_id}", headers=headers)
        assert r.status_code == 200, r.text
        return int(r.json()["skus"][0]["price_cents"])

    assert price() == 9900
    assert gateway.put(f"/api/v1/admin/users/{user_id}/level", json={"level": "vip"}, headers=admin).status_code == 200
    assert price() == 9700  # the same token, issued before the change
    assert (
        gateway.put(f"/api/v1/admin/users/{user_id}/level", json={"level": "retail"}, headers=admin).status_code == 200
    )
    assert price() == 9900


def test_a_role_change_authorises_the_very_next_request(gateway: httpx.Client) -> None:
    user_id, _, headers = new_account(gateway)
    admin = admin_headers(gateway)
    staff_only = "/api/v1/admin/topups"
    assert gateway.get(staff_only, headers=headers).status_code == 403
    r = gateway.put(f"/api/v1/admin/users/{user_id}/roles", json={"roles": ["buyer", "staff"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert gateway.get(staff_only, headers=headers).status_code == 200
    # Taking a role away matters most: it holds at once too.
    r = gateway.put(f"/api/v1/admin/users/{user_id}/roles", json={"roles": ["buyer"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert gateway.get(staff_only, headers=headers).status_code == 403
    # Signing out still works with a re-minted token (the session's jti is kept).
    assert gateway.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert gateway.get("/api/v1/me", headers=headers).status_code == 401
