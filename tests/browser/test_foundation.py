"""The foundation works in a real browser: sign up, sign out, sign in, and the home page shows a
product that staff created through the admin API, reached through 场景 → 品类 → 商品."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.buyer import browse_tree, register, sign_in, sign_out
from tests.browser.kit import AdminApi


def test_register_sign_in_and_home_shows_a_new_product(page: Page, admin: AdminApi) -> None:
    made = admin.product(scenario="游戏点卡 F", category="原神 F", name="原神创世结晶 6480 F")

    login = register(page)
    sign_out(page)
    sign_in(page, login)

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    browse_tree(page, "游戏点卡 F", "原神 F", "原神创世结晶 6480 F")
    expect(page).to_have_url(re.compile(f"/product/{made['product_id']}$"))
    expect(page.locator("h1")).to_have_text("原神创世结晶 6480 F")
    expect(page.locator(".sku")).to_contain_text("¥98.50")
