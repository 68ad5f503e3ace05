"""Issue 11 proof 4: on a 390×844 phone no storefront page scrolls sideways, and the menu opens."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.buyer import open_menu, sign_in

OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def test_no_storefront_page_scrolls_sideways_on_a_phone(phone: Page, shopper: dict[str, str]) -> None:
    for path in ("/", "/login", "/register", "/help", "/announcements", f"/product/{shopper['product_id']}"):
        phone.goto(path)
        assert phone.evaluate(OVERFLOW) <= 0, f"{path} is wider than the phone (signed out)"

    sign_in(phone, shopper["login"], shopper["password"])
    pages = [
        "/",
        f"/category/{shopper['category_id']}",
        "/search?q=腾讯视频",
        f"/product/{shopper['product_id']}",
        f"/checkout/{shopper['sku_id']}?product={shopper['product_id']}",
        "/orders",
        "/orders?group=completed",
        "/orders?group=after_sales",
        f"/orders/{shopper['order_id']}",
        f"/orders/{shopper['order_id']}/after-sales",
        f"/tickets/{shopper['ticket_id']}",
        "/wallet",
        "/wallet/topup",
        "/report",
        "/account",
        "/account/real-name",
        "/account/totp",
        "/account/contacts",
        "/account/api-keys",
        "/notifications",
        "/help",
        "/announcements",
        "/batch",
    ]
    wide = []
    for path in pages:
        response = phone.goto(path)
        assert response is not None and response.status == 200, f"{path} -> {response and response.status}"
        if phone.evaluate(OVERFLOW) > 0:
            wide.append(path)
    # The 信息预览 page is the answer to a POST.
    phone.goto(f"/checkout/{shopper['sku_id']}?product={shopper['product_id']}")
    phone.get_by_role("button", name="下一步：信息预览").click()
    expect(phone.locator("dl.preview")).to_be_visible()
    if phone.evaluate(OVERFLOW) > 0:
        wide.append("信息预览")
    assert not wide, f"wider than a 390 px phone: {wide}"

    # The menu is behind ☰ and its links are big enough to tap.
    phone.goto("/")
    expect(phone.get_by_role("link", name="订单中心")).to_be_hidden()
    open_menu(phone)
    link = phone.get_by_role("link", name="订单中心")
    expect(link).to_be_visible()
    box = link.bounding_box()
    assert box is not None and box["height"] >= 40
