"""An agent's sub-site (分站, docs/agents.md) in real Chromium: a visitor opens `/s/{slug}/` and sees
the site's own name and its price for a SKU (neither the main shop's retail price nor the agent's
cost), signs up there (the buyer belongs to the site), opens the product and buys it at the
site's price; the order page delivers the key, the order center lists it, and the order carries
the site (and earns the agent its commission). Back on the main shop the retail price shows again.

The agent (applied, approved by the bootstrap admin, its site saved) and the buyer's balance are
made through the public API: they are not this test's subject."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from deploy.platform import Platform
from tests.browser.buyer import PASSWORD, new_login
from tests.browser.kit import AdminApi, BuyerApi, eventually, tag

RETAIL, COST, OWN_PRICE = 1000, 733, 911
"""The SKU's retail and agent-level prices, and the agent's own price for it on its sub-site."""


def yuan(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


def approved_agent(platform: Platform, admin: AdminApi) -> BuyerApi:
    """A buyer who applies to be an agent and whom the admin approves."""
    agent = BuyerApi(platform.gateway_url, f"agent-{tag()}@example.com", PASSWORD)
    applied = agent.http.post("/api/v1/agent/application", json={"note": "我有渠道"}, headers=agent.headers)
    assert applied.status_code == 202, applied.text
    decided = admin.call(
        "POST", f"/api/v1/admin/agent-applications/{applied.json()['application_id']}/approve", expect=200
    )
    assert decided["status"] == "approved", decided
    return agent


def test_a_buyer_signs_up_and_buys_on_an_agents_sub_site_at_its_price(
    page: Page, platform: Platform, admin: AdminApi
) -> None:
    t = tag()
    code = f"SITE-{t}-0001"
    product = f"爱奇艺黄金会员 {t}"
    made = admin.product(
        scenario=f"视频会员 {t}",
        category=f"爱奇艺 {t}",
        name=product,
        sku_name="月卡",
        price_cents=RETAIL,
        face_value_cents=1200,  # shown next to the price: none of the prices checked
        prices={"retail": RETAIL, "agent": COST},
        keys=[code],
    )
    sku_id = made["sku_id"]
    slug, title = f"shop-{t}", f"小王的卡铺 {t}"
    agent = approved_agent(platform, admin)
    buyer: BuyerApi | None = None
    try:
        saved = agent.http.put(
            "/api/v1/agent/site",
            json={"slug": slug, "title": title, "markup_percent": 30, "prices": {sku_id: OWN_PRICE}},
            headers=agent.headers,
        )
        assert saved.status_code == 200, saved.text

        # The sub-site's home: its name, and its price for the SKU.
        page.goto(f"/s/{slug}/")
        expect(page.locator("h1")).to_have_text(title)
        expect(page).to_have_title(re.compile(re.escape(title)))
        listed = page.locator("article.site-product", has_text=product)
        sku = listed.locator(f'.sku[data-sku="{sku_id}"]')
        expect(sku.locator(".price")).to_have_text(yuan(OWN_PRICE))
        expect(listed).not_to_contain_text(yuan(RETAIL))
        expect(listed).not_to_contain_text(yuan(COST))
        expect(page.locator(".site-badge")).to_contain_text(slug)

        # Sign up on the site: the new buyer belongs to it.
        login = new_login()
        page.get_by_role("link", name="在本站注册").click()
        page.get_by_label("邮箱或手机号").fill(login)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="注册").click()
        expect(page.locator(".flash")).to_contain_text("注册成功")
        buyer = BuyerApi(platform.gateway_url, login, PASSWORD, register=False)
        assert buyer.http.get("/api/v1/me", headers=buyer.headers).json()["site"] == slug
        buyer.top_up(2_000)

        # The product page and the checkout, still on the site: the site's price.
        page.goto(f"/s/{slug}/")
        page.locator("article.site-product", has_text=product).get_by_role("link", name=product).click()
        expect(page.locator("h1")).to_have_text(product)
        offer = page.locator(".sku", has_text="月卡")
        expect(offer).to_contain_text(yuan(OWN_PRICE))
        expect(offer).not_to_contain_text(yuan(RETAIL))
        offer.get_by_role("link", name="立即购买").click()
        page.get_by_role("button", name="下一步：信息预览").click()
        expect(page.locator("dl.preview")).to_contain_text(yuan(OWN_PRICE))
        expect(page.locator("dl.preview")).not_to_contain_text(yuan(RETAIL))
        page.get_by_role("button", name=re.compile("确认支付")).click()

        # The order page delivers the key; the order center lists the order at the site's price.
        expect(page).to_have_url(re.compile(r"/orders/[^/?#]+$"))
        order_id = page.url.rstrip("/").rsplit("/", 1)[1]
        expect(page.locator("code.card-key").first).to_have_text(code, timeout=30_000)
        expect(page.locator("#order-status")).to_have_text("已发货")
        page.goto("/orders")
        row = page.locator(".list li", has_text=product)
        expect(row).to_contain_text(yuan(OWN_PRICE))

        # The order belongs to the site (the buyer's view), and the agent earns on it.
        order = buyer.http.get(f"/api/v1/orders/{order_id}", headers=buyer.headers).json()
        assert (order["site"], order["unit_price_cents"], order["total_cents"]) == (slug, OWN_PRICE, OWN_PRICE), order
        sold = eventually(
            lambda: next(
                (
                    o
                    for o in agent.http.get("/api/v1/agent/orders", headers=agent.headers).json()["items"]
                    if o["order_id"] == order_id
                ),
                None,
            ),
            message="the order among the agent's site orders",
        )
        assert sold["commission_cents"] == OWN_PRICE - COST, sold

        # Leaving the site: the main shop's page and price again.
        page.goto("/leave-site")
        page.goto(f"/product/{made['product_id']}")
        expect(page.locator(".sku", has_text="月卡")).to_contain_text(yuan(RETAIL))
        expect(page.locator(".site-badge")).to_have_count(0)
    finally:
        agent.close()
        if buyer is not None:
            buyer.close()
