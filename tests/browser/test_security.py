"""Issue 11 proof 5 (the storefront's part): values from users and staff are text, never markup;
a form posted without the CSRF token is refused; another buyer's order page is 404."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.buyer import register, sign_in
from tests.browser.conftest import DESKTOP
from tests.browser.kit import AdminApi, BuyerApi, tag

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'


def test_markup_in_product_names_and_ticket_text_shows_as_text(
    page: Page, admin: AdminApi, shopper: dict[str, str], site: str
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    t = tag()
    made = admin.product(scenario=f"XSS {t}", category=f"{XSS_IMG} {t}", name=f"{XSS} {t}")

    page.goto(f"/product/{made['product_id']}")
    expect(page.locator("h1")).to_have_text(f"{XSS} {t}")
    page.goto(f"/category/{made['category_id']}")
    expect(page.get_by_role("link", name=f"{XSS} {t}")).to_be_visible()
    page.goto(f"/search?q={t}")
    expect(page.locator(".list")).to_contain_text(f"{XSS} {t}")

    buyer = BuyerApi(site, f"xss-{t}@example.com", "s3cret-passw0rd")
    try:
        buyer.top_up(1000)
        bought = admin.product(name=f"普通商品 {t}", price_cents=100, keys=[f"X-{t}"])
        order_id = buyer.order(bought["sku_id"])
        ticket_id = buyer.ticket(order_id, f"{XSS_IMG} 我的卡密 {XSS}")
        sign_in(page, buyer.login, buyer.password)
        page.goto(f"/tickets/{ticket_id}")
        expect(page.locator(".ticket-description")).to_have_text(f"{XSS_IMG} 我的卡密 {XSS}")
        page.get_by_label("补充说明").fill(f"{XSS} again")
        page.get_by_role("button", name="提交").click()
        expect(page.locator(".list")).to_contain_text(f"{XSS} again")
    finally:
        buyer.close()
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == [], f"script ran: {dialogs}"


def test_a_form_without_the_csrf_token_is_refused(page: Page, shopper: dict[str, str]) -> None:
    sign_in(page, shopper["login"], shopper["password"])
    # The browser's own cookies (session and CSRF cookie) go along; only the token is missing.
    refused = page.request.post("/wallet/topup", form={"amount": "10", "channel": "alipay"}, max_redirects=0)
    assert refused.status == 403
    forged = page.request.post(
        "/wallet/topup", form={"amount": "10", "channel": "alipay", "_csrf_token": "forged"}, max_redirects=0
    )
    assert forged.status == 403
    # The same form from the page (with its token) is accepted.
    page.goto("/wallet/topup")
    page.get_by_label("充值金额（元）").fill("10")
    page.get_by_role("button", name="下一步：去支付").click()
    expect(page.locator("#topup-status")).to_contain_text("等待支付")


def test_another_buyers_order_page_is_404(chromium: Browser, site: str, shopper: dict[str, str]) -> None:
    context = chromium.new_context(base_url=site, viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        register(page)
        for path in (f"/orders/{shopper['order_id']}", f"/tickets/{shopper['ticket_id']}"):
            response = page.goto(path)
            assert response is not None and response.status == 404, path
            expect(page.locator("h1")).to_have_text("页面不存在")
            expect(page.locator("body")).not_to_contain_text("TX-")
        # The owner sees it.
        owner = context.browser.new_context(base_url=site, viewport=DESKTOP)  # type: ignore[union-attr, arg-type]
        try:
            mine = owner.new_page()
            sign_in(mine, shopper["login"], shopper["password"])
            response = mine.goto(f"/orders/{shopper['order_id']}")
            assert response is not None and response.status == 200
            expect(mine.locator("code.card-key").first).to_contain_text("TX-")
        finally:
            owner.close()
    finally:
        context.close()


def test_a_session_never_reaches_another_browser(chromium: Browser, site: str, shopper: dict[str, str]) -> None:
    """The gateway relays every browser over one pooled client: the session cookie one browser
    receives must never be sent along with another browser's request."""
    signed = chromium.new_context(base_url=site, viewport=DESKTOP)  # type: ignore[arg-type]
    stranger = chromium.new_context(base_url=site, viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        sign_in(signed.new_page(), shopper["login"], shopper["password"])
        anonymous = stranger.new_page()
        anonymous.goto("/")
        expect(anonymous.get_by_role("link", name="登录")).to_be_visible()
        response = anonymous.goto("/orders")
        assert response is not None
        expect(anonymous).to_have_url(re.compile(r"/login\?next="))
    finally:
        signed.close()
        stranger.close()
