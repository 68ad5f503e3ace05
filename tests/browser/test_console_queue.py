"""The manual delivery queue in real Chromium: paid orders of a manual SKU wait in the console;
staff deliver one with its content (the buyer's order then holds it) and fail another with a
reason (the buyer is refunded)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from deploy.platform import Platform
from tests.browser.buyer import sign_in
from tests.browser.kit import AdminApi, eventually, tag
from tests.browser.test_console import Account, context, flash


@pytest.fixture
def people(platform: Platform, admin: AdminApi) -> Iterator[dict[str, Account]]:
    made = {
        "buyer": Account(platform.gateway_url, admin),
        "staff": Account(platform.gateway_url, admin, ["staff"]),
    }
    yield made
    for account in made.values():
        account.close()


def _order(buyer: Account, sku_id: str, account: str) -> str:
    def placed() -> Any:
        r = buyer.http.post(
            "/api/v1/orders",
            json={"sku_id": sku_id, "quantity": 1, "recipient": {"account": account}, "pay_with": "balance"},
            headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        # The order service learns of a new SKU from catalog's event a moment later.
        return None if r.status_code == 422 and "sku_id" in r.text else r

    r = eventually(placed, message="the order service knows the SKU")
    assert r.status_code == 201, r.text
    order_id: str = r.json()["order_id"]
    return order_id


def _order_of(buyer: Account, order_id: str) -> Any:
    return buyer.http.get(f"/api/v1/orders/{order_id}", headers=buyer.headers).json()


def test_staff_deliver_one_manual_order_and_fail_another(
    chromium: Browser, site: str, admin: AdminApi, people: dict[str, Account]
) -> None:
    t = tag()
    made = admin.product(
        name=f"游戏代充 {t}",
        price_cents=3000,
        delivery_mode="manual",
        recipient_fields=[{"name": "account", "label": "游戏账号", "required": True}],
    )
    buyer, staff = people["buyer"], people["staff"]
    buyer.top_up(100_00)
    delivered = _order(buyer, made["sku_id"], f"player-{t}-1")
    failed = _order(buyer, made["sku_id"], f"player-{t}-2")

    ctx = context(chromium, site)
    page = ctx.new_page()
    sign_in(page, staff.login)

    def queued() -> bool:
        page.goto("/admin/queue")
        return page.locator(f"li.task[data-task='{failed}']").count() == 1 and (
            page.locator(f"li.task[data-task='{delivered}']").count() == 1
        )

    eventually(queued, timeout=30, interval=1, message="both orders in the manual queue")
    task = page.locator(f"li.task[data-task='{delivered}']")
    expect(task).to_contain_text(f"player-{t}-1")

    # An empty content is refused next to the field, for this task only.
    task.get_by_role("button", name="完成发货").click()
    task = page.locator(f"li.task[data-task='{delivered}']")
    expect(task.locator(".field-error")).to_be_visible()
    task.get_by_label("发货内容").fill(f"礼包码 GIFT-{t}")
    task.get_by_role("button", name="完成发货").click()
    flash(page, "已发货")
    expect(page.locator(f"li.task[data-task='{delivered}']")).to_have_count(0)

    task = page.locator(f"li.task[data-task='{failed}']")
    task.get_by_label("失败原因").fill("账号不存在")
    task.get_by_role("button", name="发货失败并退款").click()
    flash(page, "订单将退款")

    page.goto("/admin/queue?status=completed")
    expect(page.locator(f"li.task[data-task='{delivered}']")).to_be_visible()
    ctx.close()

    eventually(lambda: _order_of(buyer, delivered)["status"] == "delivered", message="delivered")
    keys = buyer.http.get(f"/api/v1/orders/{delivered}/card-keys", headers=buyer.headers).json()
    assert f"GIFT-{t}" in str(keys)
    eventually(lambda: _order_of(buyer, failed)["status"] == "refunded", message="refunded")
    eventually(lambda: buyer.balance() == 100_00 - 3000, message="the failed order's money back")
