"""What a buyer does in the browser, as steps the tests share."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

PASSWORD = "s3cret-passw0rd"  # a test account


def new_login() -> str:
    return f"buyer-{uuid.uuid4().hex[:10]}@example.com"


def register(page: Page, login: str | None = None, password: str = PASSWORD) -> str:
    login = login or new_login()
    page.goto("/register")
    page.get_by_label("邮箱或手机号").fill(login)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="注册").click()
    expect(page.locator(".flash")).to_contain_text("注册成功")
    return login


def open_menu(page: Page) -> None:
    """On a phone the menu is behind the ☰ button; on a desktop its links are always shown."""
    if page.locator(".menu-button").is_visible():
        page.locator(".menu-button").click()


def sign_out(page: Page) -> None:
    page.goto("/")
    open_menu(page)
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("link", name="登录")).to_be_attached()


def sign_in(page: Page, login: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("邮箱或手机号").fill(login)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_contain_text(login)


def browse_tree(page: Page, scenario: str, category: str, product: str) -> None:
    """Home → 场景 → 品类 → 商品. The home page's tree is cached for a few seconds, so a product
    made a moment ago may need a reload to show."""
    page.goto("/")
    # Case-sensitive and whole: `has_text` with a string ignores case and matches inside words,
    # so "游戏点卡 F" also found another test's "游戏点卡 f40bc1".
    details = page.locator("details.scenario", has_text=re.compile(re.escape(scenario) + r"(?![0-9A-Za-z])"))
    for _ in range(20):
        if details.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    details.get_by_role("link", name=category).click()
    page.get_by_role("link", name=product).click()
    expect(page.locator("h1")).to_have_text(product)
