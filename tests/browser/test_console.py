"""Issue 11 proof in real Chromium, the console's part:

(2) a staff member creates a product and a SKU in the console (an API field error shows next to
    its field), imports 1,000 keys from a file with an upload progress bar and the line-exact
    report, and sees the stock; another buyer then buys one through the storefront;
(3) a buyer opens a 售后 ticket on the storefront; staff reply and refund it in the console; the
    buyer's wallet shows the refund;
(5) a buyer opening `/admin/` gets 403; XSS in product names and ticket text is text;
(4) console pages have no horizontal overflow at 390×844.

Accounts and orders that are not the subject of a test are made through the public API."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, expect

from deploy.platform import Platform
from tests.browser.buyer import PASSWORD, sign_in
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.kit import AdminApi, eventually, tag
from tests.conftest import TRACE_VIEWER

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'
# A valid 1x1 PNG: the screenshot a buyer attaches.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc00000030101005d2a2b5b0000000049454e44ae426082"
)


class Account:
    """An account made through the public API (roles set by the bootstrap admin)."""

    def __init__(self, gateway: str, admin: AdminApi, roles: list[str] | None = None) -> None:
        self.login = f"console-{uuid.uuid4().hex[:10]}@example.com"
        self.http = httpx.Client(base_url=gateway, timeout=30)
        r = self.http.post("/api/v1/auth/register", json={"email": self.login, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.user_id: str = r.json()["user_id"]
        if roles:
            admin.call("PUT", f"/api/v1/admin/users/{self.user_id}/roles", json={"roles": roles}, expect=200)
        tokens = self.http.post("/api/v1/auth/login", json={"login": self.login, "password": PASSWORD}).json()
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def close(self) -> None:
        self.http.close()

    def balance(self) -> int:
        return int(self.http.get("/api/v1/wallet", headers=self.headers).json()["balance_cents"])

    def top_up(self, amount_cents: int) -> None:
        """Pays at the simulated provider's pay_url, as a buyer would."""

        def started() -> Any:
            r = self.http.post(
                "/api/v1/wallet/topups", json={"amount_cents": amount_cents, "channel": "alipay"}, headers=self.headers
            )
            return r.json() if r.status_code == 201 else None  # 409 until the wallet account is open

        topup = eventually(started, message="wallet account open")
        assert httpx.post(topup["pay_url"], json={"result": "success"}, timeout=10).status_code == 200
        eventually(lambda: self.balance() >= amount_cents, message="top-up credited")

    def order(self, sku_id: str) -> str:
        r = self.http.post(
            "/api/v1/orders",
            json={"sku_id": sku_id, "quantity": 1, "recipient": {}, "pay_with": "balance"},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text
        order_id: str = r.json()["order_id"]
        eventually(
            lambda: self.http.get(f"/api/v1/orders/{order_id}", headers=self.headers).json()["status"] == "delivered",
            message="order delivered",
        )
        return order_id


@pytest.fixture
def accounts(platform: Platform, admin: AdminApi) -> Iterator[list[Account]]:
    made: list[Account] = []
    yield made
    for account in made:
        account.close()


def new_account(made: list[Account], platform: Platform, admin: AdminApi, roles: list[str] | None = None) -> Account:
    account = Account(platform.gateway_url, admin, roles)
    made.append(account)
    return account


def context(chromium: Browser, site: str, viewport: dict[str, int] = DESKTOP) -> BrowserContext:
    """A browser of its own (staff and buyers side by side, each with its own session)."""
    ctx = chromium.new_context(base_url=site, viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    return ctx


def no_dialogs(page: Page) -> list[str]:
    """Any alert() (an injected script running) is recorded and fails the test."""
    seen: list[str] = []

    def record(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen


def flash(page: Page, text: str) -> None:
    expect(page.locator(".flash")).to_contain_text(text)


def test_staff_creates_product_and_sku_imports_1000_keys_with_progress_and_a_buyer_buys_one(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    t = tag()
    # The catalog API needs the admin role; this staff member has both.
    staff = new_account(accounts, platform, admin, ["staff", "admin"])
    staff_ctx = context(chromium, site)
    page = staff_ctx.new_page()
    dialogs = no_dialogs(page)
    sign_in(page, staff.login)

    page.goto("/admin/catalog")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    box = page.locator("#new-scenario")
    box.get_by_label("名称").fill(f"游戏点卡 {t}")
    box.get_by_role("button", name="创建").click()
    flash(page, "已保存")
    expect(page.locator("#tree")).to_contain_text(f"游戏点卡 {t}")

    box = page.locator("#new-category")
    box.get_by_label("场景").select_option(label=f"游戏点卡 {t}")
    box.get_by_label("名称").fill(f"原神 {t}")
    box.get_by_role("button", name="创建").click()
    flash(page, "已保存")

    box = page.locator("#new-product")
    box.get_by_label("品类").select_option(label=f"原神 {t}")
    box.get_by_label("名称").fill(f"原神创世结晶 {t}")
    box.get_by_label("描述").fill("全球通用，自动发货")
    box.get_by_role("button", name="创建").click()
    flash(page, "商品已创建")
    expect(page).to_have_url(re.compile(r"/admin/products/[^/]+$"))
    product_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("h1")).to_contain_text(f"原神创世结晶 {t}")
    expect(page.locator("h1")).to_contain_text("未上架")

    # The API refuses a VIP price above retail: its message appears next to that field.
    sku = page.locator("#new-sku")
    sku.get_by_label("名称").fill("6480 结晶")
    sku.get_by_label("面值").fill("648")
    sku.get_by_label("零售价").fill("600")
    sku.get_by_label("VIP价").fill("700")
    sku.get_by_label("有效期（天）").fill("365")
    sku.get_by_role("button", name="创建规格").click()
    expect(page.locator("#e-sku-price_vip")).to_be_visible()
    expect(page.locator("#sku-price_vip")).to_have_attribute("aria-invalid", "true")
    sku = page.locator("#new-sku")
    expect(sku.get_by_label("面值")).to_have_value("648")  # what was typed stays
    sku.get_by_label("VIP价").fill("590")
    sku.get_by_role("button", name="创建规格").click()
    flash(page, "规格已创建")
    row = page.locator("tr.sku-row", has_text="6480 结晶")
    expect(row).to_contain_text("¥600.00")
    expect(row).to_contain_text("在售")
    expect(page.locator("h1")).to_contain_text("已上架")
    sku_id = row.get_attribute("data-sku")
    assert sku_id

    # 1,000 keys from a file, plus a repeated line and an over-long one: the report names them.
    codes = [f"GS-{t}-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(1000)]
    content = "\n".join([*codes, codes[0], "X" * 300]) + "\n"
    row.get_by_role("link", name="卡密").click()
    expect(page.locator("h1")).to_contain_text("卡密")
    expect(page.locator("#stock-available")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")
    form = page.locator("form[data-upload]")
    form.get_by_label("或选择文件（TXT/CSV）").set_input_files(
        files=FilePayload(name="keys.txt", mimeType="text/plain", buffer=content.encode())
    )
    form.get_by_role("button", name="导入卡密").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("导入 1000 个，重复 1 个，无效 1 行", timeout=60_000)
    expect(report.locator("tr.duplicate-line")).to_contain_text("1001")
    expect(report.locator("tr.invalid-line")).to_contain_text("1002")
    progress = page.locator("#import-progress")
    expect(progress).to_be_visible()
    assert progress.evaluate("p => p.value") == 100
    assert form.get_attribute("data-progress") == "100"
    assert page.evaluate("window.__sameDocument === true"), "the upload reloaded the page"
    expect(page.locator("#stock-available")).to_have_text("1000")

    def sellable() -> bool:
        page.reload()
        return page.locator("#stock-sellable").inner_text() == "1000"

    eventually(sellable, timeout=30, interval=1, message="the keys on sale")
    assert not any(code in page.content() for code in codes[:5]), "a card key code is shown in the console"

    # Another buyer buys one through the storefront and gets one of the imported keys.
    buyer = new_account(accounts, platform, admin)
    buyer.top_up(1_000_00)
    buyer_ctx = context(chromium, site)
    shop = buyer_ctx.new_page()
    sign_in(shop, buyer.login)
    shop.goto(f"/product/{product_id}")
    shop.locator(".sku", has_text="6480 结晶").get_by_role("link", name="立即购买").click()
    shop.get_by_role("button", name="下一步：信息预览").click()
    shop.get_by_role("button", name=re.compile("确认支付")).click()
    expect(shop).to_have_url(re.compile(r"/orders/[^/]+$"))
    key = shop.locator("code.card-key").first
    expect(key).to_have_text(re.compile(f"^GS-{t}-"), timeout=30_000)
    assert key.inner_text() in set(codes)

    # The staff member sees it sold.
    def sold() -> bool:
        page.reload()
        return page.locator("#stock-sold").inner_text() == "1"

    eventually(sold, timeout=30, interval=1, message="the stock shows the sale")
    expect(page.locator("#stock-available")).to_have_text("999")
    assert dialogs == []
    buyer_ctx.close()
    staff_ctx.close()


def test_staff_refunds_a_ticket_the_buyer_opened_and_the_buyer_sees_the_refund(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    t = tag()
    made = admin.product(name=f"腾讯视频VIP月卡 {t}", price_cents=1990, keys=[f"TX-{t}-0001"])
    buyer = new_account(accounts, platform, admin)
    buyer.top_up(50_00)
    order_id = buyer.order(made["sku_id"])
    assert buyer.balance() == 50_00 - 1990

    # The buyer opens 售后 on the storefront, with a screenshot and text that looks like HTML.
    description = f"卡密无法使用 {XSS_IMG} {XSS}"
    buyer_ctx = context(chromium, site)
    shop = buyer_ctx.new_page()
    sign_in(shop, buyer.login)
    shop.goto(f"/orders/{order_id}/after-sales")
    shop.get_by_label("问题类型").select_option("invalid_key")
    shop.get_by_label("问题描述").fill(description)
    shop.get_by_label("凭证截图").set_input_files(
        files=FilePayload(name="screenshot.png", mimeType="image/png", buffer=PNG)
    )
    shop.get_by_role("button", name="提交售后申请").click()
    expect(shop).to_have_url(re.compile(r"/tickets/[^/]+$"))

    staff = new_account(accounts, platform, admin, ["staff"])
    staff_ctx = context(chromium, site)
    page = staff_ctx.new_page()
    dialogs = no_dialogs(page)
    sign_in(page, staff.login)
    page.goto("/admin/tickets")
    row = page.locator(f"tr.ticket-row[data-order='{order_id}']")
    expect(row).to_contain_text("卡密无效")
    row.get_by_role("link", name="处理").click()

    # The buyer's words are text: no element was made from them, no script ran.
    expect(page.locator(".ticket-description")).to_have_text(description)
    assert page.locator(".ticket-description img").count() == 0
    assert page.locator(".ticket-description script").count() == 0
    expect(page.locator(".evidence")).to_contain_text("screenshot.png")
    with staff_ctx.expect_page() as opened:
        page.get_by_role("link", name="screenshot.png").click()
    evidence = opened.value
    evidence.wait_for_load_state()
    assert "/admin/tickets/" in evidence.url and "/evidence/" in evidence.url
    evidence.close()

    page.get_by_label("回复买家").fill("已核实，马上为您退款。")
    page.get_by_role("button", name="发送回复").click()
    flash(page, "已回复")
    expect(page.locator(".thread")).to_contain_text("已核实，马上为您退款。")

    # Refund: support may not know the delivery yet (events): the page says so and staff retry.
    deadline = time.monotonic() + 30
    while True:
        page.locator("#resolve").get_by_label("退款（原路退回余额）").check()
        page.locator("#resolve").get_by_label("处理说明（买家可见）").fill("卡密已失效，全额退款")
        page.locator("#resolve").get_by_role("button", name="处理工单").click()
        page.locator(".flash, #resolve .banner.error").first.wait_for()
        if page.locator(".flash").count():
            break
        assert time.monotonic() < deadline, page.locator(".banner").all_inner_texts()
        time.sleep(1)
        page.reload()
    flash(page, "工单已处理：退款")
    expect(page.locator("#ticket-status")).to_have_text("已处理")
    expect(page.locator("#resolution")).to_contain_text("¥19.90")

    # The buyer's wallet shows the refund.
    def refunded() -> bool:
        shop.goto("/wallet")
        return shop.locator("#balance").inner_text() == "¥50.00"

    eventually(refunded, timeout=45, interval=1, message="the refund in the buyer's wallet")
    expect(shop.locator("table.ledger")).to_contain_text("退款")
    expect(shop.locator("table.ledger")).to_contain_text("+¥19.90")
    assert dialogs == []
    buyer_ctx.close()
    staff_ctx.close()


def test_a_buyer_gets_403_and_a_visitor_is_sent_to_sign_in(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    ctx = context(chromium, site)
    page = ctx.new_page()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fadmin"))

    buyer = new_account(accounts, platform, admin)
    sign_in(page, buyer.login)
    for path in ("/admin/", "/admin/catalog", "/admin/orders", f"/admin/users?user_id={buyer.user_id}"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_have_text("无权访问")
    # Posting straight to a console form as a buyer is refused as well.
    page.goto("/")
    token = page.locator("input[name=_csrf_token]").first.get_attribute("value")
    answer = page.request.post("/admin/scenarios", form={"name": "x", "_csrf_token": token or ""})
    assert answer.status == 403
    ctx.close()


def test_names_and_texts_that_look_like_html_are_shown_as_text(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    t = tag()
    made = admin.product(scenario=f"{XSS} {t}", category=f"{XSS_IMG} {t}", name=f"{XSS} {t}", sku_name=XSS_IMG)
    admin.call(
        "POST",
        "/api/v1/admin/announcements",
        json={"title": f"{XSS} {t}", "body": XSS_IMG, "published": False},
        expect=201,
    )
    ctx = context(chromium, site)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    staff = new_account(accounts, platform, admin, ["staff", "admin"])
    sign_in(page, staff.login)

    page.goto(f"/admin/products/{made['product_id']}")
    expect(page.locator("h1")).to_contain_text(f"{XSS} {t}")
    expect(page.locator("tr.sku-row")).to_contain_text(XSS_IMG)
    assert page.locator("main script, main img").count() == 0

    page.goto("/admin/catalog")
    expect(page.locator("#tree")).to_contain_text(f"{XSS} {t}")
    expect(page.locator("#tree")).to_contain_text(f"{XSS_IMG} {t}")
    page.goto(f"/admin/catalog?q={t}")
    expect(page.locator("#found")).to_contain_text(f"{XSS} {t}")
    page.goto(f"/admin/skus/{made['sku_id']}")
    expect(page.locator("h1")).to_contain_text(XSS_IMG)
    page.goto("/admin/")
    expect(page.locator("#low-stock")).to_contain_text(f"{XSS} {t}")  # no keys: out of stock
    page.goto("/admin/announcements")
    expect(page.locator("#items")).to_contain_text(f"{XSS} {t}")
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []
    ctx.close()


def test_console_pages_have_no_horizontal_overflow_on_a_phone(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    t = tag()
    made = admin.product(
        name=f"中国移动话费充值一百元全国通用自动发货超长名称 {t}", keys=[f"CM-{t}-{i}" for i in range(3)]
    )
    buyer = new_account(accounts, platform, admin)
    buyer.top_up(100_00)
    order_id = buyer.order(made["sku_id"])
    ticket = buyer.http.post(
        "/api/v1/tickets",
        json={"order_id": order_id, "kind": "invalid_key", "description": "无法使用" * 40},
        headers=buyer.headers,
    ).json()
    staff = new_account(accounts, platform, admin, ["staff", "admin"])

    ctx = context(chromium, site, PHONE)
    page = ctx.new_page()
    sign_in(page, staff.login)
    paths = [
        "/admin/",
        "/admin/catalog",
        f"/admin/products/{made['product_id']}",
        f"/admin/skus/{made['sku_id']}",
        f"/admin/skus/{made['sku_id']}/keys",
        "/admin/queue",
        "/admin/tickets",
        f"/admin/tickets/{ticket['ticket_id']}",
        "/admin/topups",
        "/admin/coupons",
        f"/admin/users?user_id={buyer.user_id}",
        f"/admin/orders?user_id={buyer.user_id}",
        f"/admin/orders/{order_id}",
        "/admin/announcements",
        "/admin/help",
        "/admin/webhooks",
    ]
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{path} overflows: {widths}"
    # The order's page links its trace in the viewer the platform names (TRACE_VIEWER_URL).
    trace_id = admin.call("GET", f"/api/v1/admin/orders/{order_id}", expect=200)["trace_id"]
    page.goto(f"/admin/orders?q={order_id}")
    expect(page.locator("#order")).to_contain_text(buyer.user_id)
    expect(page.locator("#trace-link")).to_have_attribute("href", TRACE_VIEWER.replace("{trace_id}", trace_id))
    ctx.close()


def test_a_large_key_file_becomes_an_import_job_whose_progress_the_page_follows(
    chromium: Browser, site: str, platform: Platform, admin: AdminApi, accounts: list[Account]
) -> None:
    """Past the vault's job threshold (256 KiB) the API answers 202 with a job; the page shows its
    progress, asks again every second, and ends with the job's report."""
    t = tag()
    made = admin.product(name=f"大批量导入 {t}")
    # Long keys, few of them: past the threshold in bytes while the job itself stays short.
    codes = [f"BULK-{t}-{i:06d}-" + uuid.uuid4().hex * 5 for i in range(1500)]
    content = ("\n".join(codes) + "\n").encode()
    assert len(content) > 256 * 1024
    staff = new_account(accounts, platform, admin, ["staff", "admin"])
    ctx = context(chromium, site)
    page = ctx.new_page()
    sign_in(page, staff.login)
    page.goto(f"/admin/skus/{made['sku_id']}/keys")
    form = page.locator("form[data-upload]")
    form.get_by_label("或选择文件（TXT/CSV）").set_input_files(
        files=FilePayload(name="bulk.txt", mimeType="text/plain", buffer=content)
    )
    form.get_by_role("button", name="导入卡密").click()
    job = page.locator("#import-job")
    expect(job).to_be_attached(timeout=60_000)
    expect(job).to_have_attribute("data-status", "succeeded", timeout=180_000)
    expect(job).to_contain_text("导入 1500 个，重复 0 个，无效 0 行")
    job.get_by_role("link", name="刷新库存").click()
    expect(page.locator("#stock-available")).to_have_text("1500")
    ctx.close()
