"""The console's pages for `make screenshots` (tests/browser/screenshots.py, the storefront's
script), kept here so the console adds its pages without editing that script's list:

    from tests.browser.test_console_screens import shoot_console
    ...
    shoot_console(context, data, shoot, label)   # after the storefront's pages, per viewport

`context` is a browser context of its own, not signed in (the script's buyer context is not: on
it /login shows no form); `data` is the script's seed (`product_id`, `sku_id`, `ticket_id`); the
pages are shot as the bootstrap admin. The test below keeps the list honest: every page answers 200 to staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page

from deploy.services import DEV_DEFAULTS
from tests.browser.buyer import sign_in
from tests.browser.kit import AdminApi, tag


def console_pages(data: dict[str, str]) -> dict[str, str]:
    """Screenshot name -> console path."""
    pages = {
        "console-dashboard": "/admin/",
        "console-catalog": "/admin/catalog",
        "console-product": f"/admin/products/{data['product_id']}",
        "console-keys": f"/admin/skus/{data['sku_id']}/keys",
        "console-tickets": "/admin/tickets",
        "console-ticket": f"/admin/tickets/{data['ticket_id']}",
        "console-queue": "/admin/queue",
        "console-coupons": "/admin/coupons",
        "console-orders": "/admin/orders",
    }
    if "order_id" in data:  # the order with its trace link (the script's seed has one)
        pages["console-order"] = f"/admin/orders/{data['order_id']}"
    return pages


def shoot_console(
    context: BrowserContext, data: dict[str, str], shoot: Callable[[Page, str, str], Any], label: str
) -> None:
    page = context.new_page()
    sign_in(page, DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"])
    for name, path in console_pages(data).items():
        shoot(page, f"{name}-{label}", path)
    page.close()


def test_every_screenshot_page_opens_for_staff(page: Page, admin: AdminApi) -> None:
    made = admin.product(keys=[f"SCREEN-{tag()}-0001"])
    data = {**made, "ticket_id": "no-such-ticket"}
    sign_in(page, DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"])
    for name, path in console_pages(data).items():
        response = page.goto(path)
        assert response is not None
        expected = 404 if name == "console-ticket" else 200
        assert response.status == expected, f"{name} {path} -> {response.status}"
