"""`make screenshots`: start the platform on the embedded stack, fill it with a small catalog, an
announcement, a help article and a buyer with a delivered order and a 售后 ticket, then save
the main storefront pages as PNGs into docs/screenshots/ (desktop 1280×800 and phone 390×844).

Run it when no other stack runs (it starts one): `make screenshots`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack, free_port
from tests.browser.buyer import sign_in
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from tests.browser.kit import AdminApi, BuyerApi
from tests.browser.test_console_screens import shoot_console

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
RUN = ROOT / ".kameng" / "screenshots" / time.strftime("%Y%m%d-%H%M%S")


def seed(admin: AdminApi, gateway: str) -> dict[str, str]:
    admin.call(
        "POST",
        "/api/v1/admin/announcements",
        json={"title": "双十二话费充值 98 折", "body": "12 月 1 日至 12 日，话费直充享 98 折。", "pinned": True},
        expect=201,
    )
    admin.call(
        "POST",
        "/api/v1/admin/help/articles",
        json={
            "title": "卡密如何使用？",
            "body": "在订单中心打开订单，复制卡密后到对应平台兑换。",
            "category": "新手指南",
        },
        expect=201,
    )
    made = admin.product(
        scenario="通信充值",
        category="话费充值",
        name="中国移动话费 100 元",
        sku_name="100元",
        price_cents=9850,
        face_value_cents=10000,
        keys=[f"CMCC-8842-{i:04d}-XK" for i in range(5)],
        wholesale=[{"min_quantity": 10, "price_cents": 9800}, {"min_quantity": 100, "price_cents": 9750}],
    )
    admin.product(
        scenario="游戏点卡", category="王者荣耀", name="王者荣耀点券 60", price_cents=600, face_value_cents=600
    )
    admin.product(
        scenario="视频会员", category="腾讯视频", name="腾讯视频 VIP 月卡", price_cents=1990, face_value_cents=3000
    )
    buyer = BuyerApi(gateway, "demo-buyer@example.com", "s3cret-passw0rd")
    try:
        buyer.top_up(50_000)
        order_id = buyer.order(made["sku_id"])
        ticket_id = buyer.ticket(order_id, "卡密提示已被使用，附截图。")
    finally:
        buyer.close()
    return {**made, "order_id": order_id, "ticket_id": ticket_id, "login": buyer.login, "password": buyer.password}


def new_context(browser: Browser, gateway: str, viewport: dict[str, int]) -> BrowserContext:
    """A browser of its own (cookies apart): the buyer's pages and the console are shot in two."""
    return browser.new_context(
        base_url=gateway,
        viewport=viewport,  # type: ignore[arg-type]
        locale="zh-CN",
        device_scale_factor=1,
    )


def shoot(page: Page, name: str, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
    print(f"  {name}.png  {path}")


def shoot_trace(browser: Any, gateway: str, traces: str, data: dict[str, str]) -> None:
    """The console's order page and, through its "trace" link, the order's saga as a waterfall."""
    admin = AdminApi(gateway)
    trace_id = admin.call("GET", f"/api/v1/admin/orders/{data['order_id']}", expect=200)["trace_id"]
    admin.close()
    deadline = time.monotonic() + 30
    # Spans arrive in batches; wait until the delivery's consumers have exported theirs.
    while time.monotonic() < deadline:
        spans = httpx.get(f"{traces}/api/traces/{trace_id}").json() if trace_id else []
        if isinstance(spans, list) and len({s["service"] for s in spans}) >= 4:
            break
        time.sleep(0.5)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    shoot(page, "trace-desktop", f"{traces}/traces/{trace_id}")
    context.close()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    # The dev trace viewer receives every span, as in `make dev`: the order's trace is shot too.
    traces = f"http://127.0.0.1:{free_port()}"
    viewer = subprocess.Popen(
        [sys.executable, "-m", "deploy.traceview"], env={**os.environ, "PORT": traces.rsplit(":", 1)[1]}
    )
    with EmbeddedStack(run_dir=RUN / "stack") as infra:
        env = {
            **default_base_env(infra),
            "KAMENG_ENV": "test",
            "TOPUP_POLL_AFTER_SECONDS": "2",
            "OTEL_EXPORTER_OTLP_ENDPOINT": traces,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "TRACE_VIEWER_URL": traces + "/traces/{trace_id}",
        }
        platform = Platform(base_env=env, logs_dir=RUN / "platform")
        platform.start()
        try:
            admin = AdminApi(platform.gateway_url)
            data = seed(admin, platform.gateway_url)
            admin.close()
            pages = {
                "home": "/",
                "product": f"/product/{data['product_id']}",
                "checkout": f"/checkout/{data['sku_id']}?product={data['product_id']}&recipient.mobile=13800138000",
                "orders": "/orders",
                "order": f"/orders/{data['order_id']}",
                "ticket": f"/tickets/{data['ticket_id']}",
                "wallet": "/wallet",
                "report": "/report",
                "account": "/account",
            }
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = new_context(browser, platform.gateway_url, viewport)
                    page = context.new_page()
                    sign_in(page, data["login"], data["password"])
                    for name, path in pages.items():
                        shoot(page, f"{name}-{label}", path)
                    context.close()
                    # Staff in a browser of their own: with the buyer's session cookie /login
                    # shows no form (the buyer is signed in already).
                    staff = new_context(browser, platform.gateway_url, viewport)
                    shoot_console(staff, data, shoot, label)
                    staff.close()
                shoot_trace(browser, platform.gateway_url, traces, data)
                browser.close()
        finally:
            platform.stop()
            viewer.terminate()
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
