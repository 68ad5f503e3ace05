"""Issue 11 proof 1 (and the buyer's part of 3) in real Chromium: a new buyer registers, finds the
product through 场景 → 品类 → 商品 and through search, fills the checkout (a wrong number is shown
next to its field), passes 信息预览, is short of balance, tops up through the simulated provider
and comes back to the same checkout, pays, and copies the card key that appears on the order page
without reloading; then opens a 售后 ticket with a screenshot."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.buyer import browse_tree, register
from tests.browser.kit import PNG, AdminApi, tag


def test_buyer_finds_previews_tops_up_pays_copies_the_key_and_asks_for_after_sales(
    page: Page, browser_context: BrowserContext, admin: AdminApi
) -> None:
    t = tag()
    code = f"KM-{t}-0001-ABCD"
    made = admin.product(
        scenario=f"游戏点卡 {t}",
        category=f"王者荣耀 {t}",
        name=f"王者荣耀点券 {t}",
        sku_name="60点券",
        price_cents=600,
        face_value_cents=600,
        recipient_fields=[{"name": "mobile", "label": "手机号", "required": True, "pattern": r"^1[3-9]\d{9}$"}],
        keys=[code],
    )
    register(page)

    # Through the tree: 场景 → 品类 → 商品.
    browse_tree(page, f"游戏点卡 {t}", f"王者荣耀 {t}", f"王者荣耀点券 {t}")

    # Through search (Chinese words).
    page.goto("/")
    page.locator("#home-q").fill(f"点券 {t}")
    page.locator("#home-q").press("Enter")
    page.get_by_role("link", name=re.compile(f"王者荣耀点券 {t}")).click()
    expect(page).to_have_url(re.compile(f"/product/{made['product_id']}$"))
    sku = page.locator(".sku", has_text="60点券")
    expect(sku).to_contain_text("¥6.00")
    expect(sku).to_contain_text("自动发货")
    expect(sku).to_contain_text("365 天")
    sku.get_by_role("link", name="立即购买").click()

    # A wrong number: the API's error appears next to the field.
    page.get_by_label("手机号").fill("12345")
    page.get_by_role("button", name="下一步：信息预览").click()
    expect(page.locator("#e-recipient\\.mobile")).to_be_visible()
    page.get_by_label("手机号").fill("13800138000")
    page.get_by_role("button", name="下一步：信息预览").click()

    # 信息预览: what will be bought, for whom, the total, and the short balance.
    preview = page.locator("dl.preview")
    expect(preview).to_contain_text("13800138000")
    expect(preview).to_contain_text("¥6.00")
    expect(page.get_by_role("alert")).to_contain_text("余额不足")
    page.get_by_role("link", name=re.compile("去充值")).click()

    # Top up at the provider's pay page; the status page follows it without reloading.
    expect(page.get_by_label("充值金额（元）")).to_have_value("6")
    page.get_by_label("充值金额（元）").fill("50")
    page.get_by_role("button", name="下一步：去支付").click()
    with browser_context.expect_page() as paying:
        page.get_by_role("link", name="前往支付").click()
    provider = paying.value
    provider.get_by_role("button", name="Pay").click()
    expect(provider.locator("#out")).to_contain_text("success")
    provider.close()
    expect(page.locator("#topup-status")).to_contain_text("充值成功", timeout=30_000)
    page.get_by_role("link", name="返回结算").click()

    # Back at the same checkout with what was typed; preview again and pay.
    expect(page.get_by_label("手机号")).to_have_value("13800138000")
    page.get_by_role("button", name="下一步：信息预览").click()
    expect(page.locator("dl.preview")).to_contain_text("¥50.00")
    page.get_by_role("button", name=re.compile("确认支付")).click()

    # The order page: the key arrives without a reload (the marker survives), then copy it.
    expect(page).to_have_url(re.compile(r"/orders/[^/]+$"))
    page.evaluate("window.__sameDocument = true")
    key = page.locator("code.card-key").first
    expect(key).to_have_text(code, timeout=30_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    expect(page.locator("#order-status")).to_have_text("已发货")
    page.get_by_role("button", name="复制").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == code
    expect(page.locator(".timeline")).to_contain_text("已付款")

    # 售后 with a screenshot.
    page.get_by_role("link", name="申请售后").click()
    page.get_by_label("问题类型").select_option("invalid_key")
    page.get_by_label("问题描述").fill("卡密提示已被使用")
    page.get_by_label("凭证截图").set_input_files(
        files=[{"name": "screenshot.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_role("button", name="提交售后申请").click()
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"))
    expect(page.locator(".ticket-description")).to_have_text("卡密提示已被使用")
    expect(page.locator(".evidence")).to_contain_text("screenshot.png")
    page.goto("/orders?group=after_sales")
    expect(page.locator(".list")).to_contain_text("卡密无效")
