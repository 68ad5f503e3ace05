"""Browser tests: Debian's Chromium (`/usr/bin/chromium`) driven by Playwright against the same
platform as the e2e tests (every process started by `tests/conftest.py`'s `platform`), through
the gateway like a real browser. Playwright's own browser download is never used.

A missing Chromium FAILS the tests with a clear message (it is not skipped): `.ci/run` installs
it, on a workstation run `apt-get install -y chromium`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from deploy.platform import Platform
from tests.browser.kit import AdminApi, BuyerApi, tag

CHROMIUM = os.environ.get("KAMENG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


ARTIFACTS = Path(__file__).resolve().parents[2] / ".kameng" / "browser-failures"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Lets the page fixtures see whether their test failed (to keep what the browser showed).
    report = yield
    setattr(item, f"report_{report.when}", report)  # type: ignore[attr-defined]
    return report  # type: ignore[no-any-return]


def _keep_failure(request: pytest.FixtureRequest, context: BrowserContext) -> None:
    """After a failed test: a screenshot, the HTML and the URL of every open page."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for i, open_page in enumerate(context.pages):
        stem = ARTIFACTS / f"{request.node.name}-{i}"
        try:
            open_page.screenshot(path=f"{stem}.png", full_page=True)
            stem.with_suffix(".html").write_text(f"<!-- {open_page.url} -->\n" + open_page.content())
        except Exception as exc:
            print(f"could not keep {stem}: {exc!r}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(`apt-get install -y chromium`; .ci/run installs it). They are not skipped.",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def site(platform: Platform) -> str:
    """The storefront's address: the gateway's `/`."""
    return platform.gateway_url


@pytest.fixture(scope="session")
def admin(platform: Platform) -> Iterator[AdminApi]:
    api = AdminApi(platform.gateway_url)
    try:
        yield api
    finally:
        api.close()


def _context(chromium: Browser, site: str, viewport: dict[str, int]) -> BrowserContext:
    context = chromium.new_context(base_url=site, viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def browser_context(request: pytest.FixtureRequest, chromium: Browser, site: str) -> Iterator[BrowserContext]:
    context = _context(chromium, site, DESKTOP)
    try:
        yield context
    finally:
        _keep_failure(request, context)
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    return browser_context.new_page()


@pytest.fixture
def phone(request: pytest.FixtureRequest, chromium: Browser, site: str) -> Iterator[Page]:
    context = _context(chromium, site, PHONE)
    try:
        yield context.new_page()
    finally:
        _keep_failure(request, context)
        context.close()


@pytest.fixture(scope="session")
def shopper(platform: Platform, admin: AdminApi) -> Iterator[dict[str, str]]:
    """A buyer (made through the API) with a delivered order and an after-sales ticket, and the
    product they bought: the pages a buyer has, filled."""
    t = tag()
    made = admin.product(
        scenario=f"视频会员 {t}",
        category=f"腾讯视频 {t}",
        name=f"腾讯视频VIP月卡 {t}",
        sku_name="月卡",
        price_cents=1990,
        face_value_cents=3000,
        keys=[f"TX-{t}-{i:04d}" for i in range(3)],
        wholesale=[{"min_quantity": 10, "price_cents": 1800}],
    )
    buyer = BuyerApi(platform.gateway_url, f"shopper-{t}@example.com", "s3cret-passw0rd")
    try:
        buyer.top_up(10_000)
        order_id = buyer.order(made["sku_id"])
        ticket_id = buyer.ticket(order_id, "第一次使用提示无效")
        yield {**made, "login": buyer.login, "password": buyer.password, "order_id": order_id, "ticket_id": ticket_id}
    finally:
        buyer.close()
