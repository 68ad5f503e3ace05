"""Agents and sub-sites (代理 / 分站, issue 15) end to end on the real stack, through the gateway:
a buyer applies and is approved (the agent role holds from the very next request), runs a
sub-site whose prices are never below its cost, sells to a buyer who signed up there (who never
sees the cost), earns each delivered order's commission once (pending, then available after the
after-sales window; reversed once on a refund before or after it), withdraws (two racing requests
for the whole amount: one wins; a rejection gives the money back; paying twice pays once), and
the money of buyer, agent and platform adds up in the ledger."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pymongo
import pytest

from deploy.platform import Platform
from deploy.services import DEV_DEFAULTS
from shared.contracts.envelope import new_id
from tests.e2e.identity_kit import PASSWORD
from tests.e2e.test_after_sales import open_ticket, resolve_repeatedly
from tests.flows import Flows
from tests.helpers import auth, eventually

RETAIL, COST, OWN_PRICE = 1000, 733, 911
"""The SKU's retail and agent-level prices, and the agent's own price on its sub-site."""
COMMISSION = OWN_PRICE - COST
STAFF = auth("agents-staff", roles=("staff",))


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=20)
    yield f
    await f.close()


@pytest.fixture(scope="module")
def wallet_db(infra: dict[str, str]) -> Iterator[Any]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(infra["MONGODB_URL"], tz_aware=True)
    yield client["kameng_wallet"]
    client.close()


def numbers_in(value: Any) -> set[int]:
    """Every integer anywhere in a decoded JSON answer."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, dict):
        return set().union(*(numbers_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(numbers_in(v) for v in value)) if value else set()
    return set()


class BuyerView:
    """Every answer a sub-site buyer gets, kept to check that the agent's cost is in none."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response] = []

    def saw(self, response: httpx.Response) -> httpx.Response:
        self.answers.append(response)
        return response

    def check_no_cost(self) -> None:
        for r in self.answers:
            body = r.json()
            assert COST not in numbers_in(body), f"the agent's cost leaked in {r.request.url}: {r.text}"
            assert "cost" not in r.text and "commission" not in r.text and "agent_id" not in r.text, r.text


async def register(flows: Flows, email: str, headers: dict[str, str] | None = None) -> str:
    r = await flows.call(
        "POST", "/api/v1/auth/register", json={"email": email, "password": PASSWORD}, headers=headers or {}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["user_id"])


async def make_agent(flows: Flows) -> tuple[str, dict[str, str], str]:
    """A registered buyer who applies and is approved; their token, minted before the approval,
    is used on: the gateway forwards it with the new role from the next request (Decision 19)."""
    email = f"agent-{new_id()[:10]}@example.com"
    agent_id = await register(flows, email)
    headers = auth(agent_id)
    applied = await flows.call("POST", "/api/v1/agent/application", json={"note": "我有渠道"}, headers=headers)
    assert applied.status_code == 202 and applied.json()["status"] == "pending", applied.text
    application_id = applied.json()["application_id"]
    again = await flows.call("POST", "/api/v1/agent/application", json={"note": "again"}, headers=headers)
    assert again.json()["application_id"] == application_id  # one pending application per buyer
    pending = await flows.call(
        "GET", "/api/v1/admin/agent-applications", params={"status": "pending", "page_size": 200}, headers=STAFF
    )
    assert application_id in [a["application_id"] for a in pending.json()["items"]], pending.text
    forbidden = await flows.call("PUT", "/api/v1/agent/site", json={"slug": "x-y-z", "title": "t"}, headers=headers)
    assert forbidden.status_code == 403, forbidden.text
    for _ in range(2):  # approving twice is harmless
        r = await flows.call("POST", f"/api/v1/admin/agent-applications/{application_id}/approve", headers=STAFF)
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    rejected = await flows.call("POST", f"/api/v1/admin/agent-applications/{application_id}/reject", headers=STAFF)
    assert rejected.status_code == 409, rejected.text
    me = await flows.call("GET", "/api/v1/me", headers=headers, expect=200)
    assert me.json()["level"] == "agent" and "agent" in me.json()["roles"]
    return agent_id, headers, email


async def commissions(flows: Flows, headers: dict[str, str]) -> dict[str, Any]:
    r = await flows.call("GET", "/api/v1/agent/commissions", params={"page_size": 200}, headers=headers, expect=200)
    body: dict[str, Any] = r.json()
    return body


async def commission_of(flows: Flows, headers: dict[str, str], order_id: str, status: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        items = (await commissions(flows, headers))["items"]
        return next((c for c in items if c["order_id"] == order_id and c["status"] == status), None)

    return await eventually(found, message=f"commission of {order_id} {status}")


async def credited(flows: Flows, headers: dict[str, str], order_id: str, slug: str) -> dict[str, Any]:
    """The order's commission, booked once at the sale price minus the agent's cost, pending
    until its window closes. On a loaded machine the window (6 s in tests) can close before
    the first look (it did in CI), so "available" counts too, but only if it was released after its window:
    a commission that skipped pending would fail here."""

    async def found() -> dict[str, Any] | None:
        items = (await commissions(flows, headers))["items"]
        return next((c for c in items if c["order_id"] == order_id), None)

    entry = await eventually(found, message=f"commission of {order_id}")
    assert entry["amount_cents"] == COMMISSION and entry["site"] == slug, entry
    credited_at, available_at = (datetime.fromisoformat(entry[k]) for k in ("credited_at", "available_at"))
    assert available_at > credited_at, entry
    if entry["status"] != "pending":
        assert entry["status"] == "available" and datetime.fromisoformat(entry["released_at"]) >= available_at, entry
    return entry


async def sub_site_pages(flows: Flows, slug: str, product_id: str) -> None:
    """The web's sub-site storefront (HTML through the gateway): the site's title and price on its
    home, and the same product page at the site's price once the visitor came in through it."""
    async with httpx.AsyncClient(base_url=flows.gateway_url, timeout=30, follow_redirects=True) as browser:
        home = await browser.get(f"/s/{slug}/")
        assert home.status_code == 200 and "小王的卡铺" in home.text and "¥9.11" in home.text, home.text[:500]
        product = await browser.get(f"/product/{product_id}")
        assert product.status_code == 200 and "¥9.11" in product.text, product.text[:500]
        for answer in (home, product):
            assert "¥7.33" not in answer.text and "¥10.00" not in answer.text
        await browser.get("/leave-site")
        main = await browser.get(f"/product/{product_id}")
        assert "¥10.00" in main.text and "¥9.11" not in main.text
        # Signing up on the sub-site's pages binds the new buyer to it.
        await browser.get(f"/s/{slug}/")
        form = await browser.get("/register")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
        assert token is not None, form.text[:500]
        email = f"web-{new_id()[:10]}@example.com"
        signed_up = await browser.post(
            "/register", data={"login": email, "password": PASSWORD, "next": "/", "_csrf_token": token.group(1)}
        )
        assert signed_up.status_code == 200, signed_up.text[:500]
        tokens = await flows.call("POST", "/api/v1/auth/login", json={"login": email, "password": PASSWORD}, expect=200)
        me = await flows.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
        assert me.json()["site"] == slug
        await browser.get("/leave-site")
        unknown = await browser.get("/s/no-such-shop/")
        assert unknown.status_code == 404
        still_main = await browser.get(f"/product/{product_id}")  # an unknown site is not kept
        assert still_main.status_code == 200 and "¥10.00" in still_main.text


async def web_session(flows: Flows, login: str, password: str) -> httpx.AsyncClient:
    """A browser-like client signed in through the web's sign-in form (CSRF included)."""
    browser = httpx.AsyncClient(base_url=flows.gateway_url, timeout=30, follow_redirects=True)
    form = await browser.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text[:300]
    signed_in = await browser.post(
        "/login", data={"login": login, "password": password, "next": "/", "_csrf_token": token.group(1)}
    )
    assert signed_in.status_code == 200 and "/logout" in signed_in.text, signed_in.text[:300]
    return browser


async def agent_and_console_pages(flows: Flows, agent_email: str, slug: str) -> None:
    """The agent centre shows the site (with the agent's own cost), the balances and the paid
    withdrawal, and refuses a bad amount next to its field; the console lists applications and
    the paid withdrawal."""
    agent = await web_session(flows, agent_email, PASSWORD)
    try:
        centre = await agent.get("/agent")
        assert centre.status_code == 200 and f"/s/{slug}/" in centre.text and "¥7.33" in centre.text
        assert "¥1.78" in centre.text, centre.text[:2000]  # the paid withdrawal
        token = re.search(r'name="_csrf_token" value="([^"]+)"', centre.text)
        assert token is not None
        bad = await agent.post("/agent/withdraw", data={"amount": "lots", "_csrf_token": token.group(1)})
        assert bad.status_code == 422 and 'id="e-amount"' in bad.text
    finally:
        await agent.aclose()
    staff = await web_session(flows, DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"])
    try:
        assert (await staff.get("/admin/agents", params={"status": "approved"})).status_code == 200
        paid = await staff.get("/admin/withdrawals", params={"status": "paid"})
        assert paid.status_code == 200 and "¥1.78" in paid.text
    finally:
        await staff.aclose()


async def refund(flows: Flows, buyer: str, order_id: str) -> None:
    await resolve_repeatedly(flows, await open_ticket(flows, buyer, order_id), "refund")
    await flows.wait_final(buyer, order_id, final={"refunded"})


async def test_an_agents_sub_site_sells_earns_and_pays_out_once(flows: Flows, wallet_db: Any) -> None:
    sku_id = await flows.create_sku(prices={"retail": RETAIL, "agent": COST})
    await flows.import_keys(sku_id, [f"AG-KEY-{new_id()[:12]}-{i}" for i in range(4)])
    await flows.wait_orderable(sku_id, 3)
    product_id = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}", headers=flows.admin)).json()["product_id"]

    agent_id, agent, agent_email = await make_agent(flows)
    slug = f"shop-{new_id()[:8]}"
    site = {"slug": slug, "title": "小王的卡铺", "markup_percent": 30}
    below = await flows.call("PUT", "/api/v1/agent/site", json={**site, "prices": {sku_id: COST - 1}}, headers=agent)
    assert below.status_code == 422 and below.headers["content-type"].startswith("application/problem+json")
    assert below.json()["errors"][0]["field"] == f"prices.{sku_id}", below.text
    bad_slug = await flows.call("PUT", "/api/v1/agent/site", json={**site, "slug": "Not A Slug!"}, headers=agent)
    assert bad_slug.status_code == 422 and bad_slug.json()["errors"][0]["field"] == "slug", bad_slug.text
    saved = await flows.call("PUT", "/api/v1/agent/site", json={**site, "prices": {sku_id: OWN_PRICE}}, headers=agent)
    assert saved.status_code == 200, saved.text
    mine = next(s for s in saved.json()["skus"] if s["sku_id"] == sku_id)
    assert (mine["cost_cents"], mine["price_cents"]) == (COST, OWN_PRICE)  # the agent sees its own cost
    _, rival, _ = await make_agent(flows)
    taken = await flows.call("PUT", "/api/v1/agent/site", json={**site, "title": "copy"}, headers=rival)
    assert taken.status_code == 409, taken.text

    # A buyer signs up on the sub-site and shops there: the site's price, never the agent's cost.
    view = BuyerView()
    on_site = {"X-Kameng-Site": slug}
    buyer = await register(flows, f"buyer-{new_id()[:10]}@example.com", headers=on_site)
    buyer_h = {**auth(buyer), **on_site}
    me = view.saw(await flows.call("GET", "/api/v1/me", headers=buyer_h, expect=200))
    assert me.json()["site"] == slug
    page = view.saw(await flows.call("GET", f"/api/v1/sites/{slug}", headers=on_site, expect=200))
    assert page.json()["title"] == "小王的卡铺"
    assert {s["sku_id"]: s["price_cents"] for p in page.json()["products"] for s in p["skus"]}[sku_id] == OWN_PRICE
    product = view.saw(await flows.call("GET", f"/api/v1/catalog/products/{product_id}", headers=buyer_h, expect=200))
    assert [s["price_cents"] for s in product.json()["skus"]] == [OWN_PRICE]
    main = await flows.call("GET", f"/api/v1/catalog/products/{product_id}", headers=auth(buyer), expect=200)
    assert [s["price_cents"] for s in main.json()["skus"]] == [RETAIL]
    await flows.fund(buyer, 3 * OWN_PRICE)
    quote = view.saw(
        await flows.call("POST", "/api/v1/orders/quote", json={"sku_id": sku_id, "quantity": 1}, headers=buyer_h)
    )
    assert quote.status_code == 200 and quote.json()["unit_price_cents"] == OWN_PRICE, quote.text

    async def buy() -> str:
        r = view.saw(
            await flows.call(
                "POST", "/api/v1/orders", json={"sku_id": sku_id, "quantity": 1, "pay_with": "balance"}, headers=buyer_h
            )
        )
        assert r.status_code == 201 and r.json()["total_cents"] == OWN_PRICE, r.text
        order = await flows.wait_final(buyer, r.json()["order_id"])
        assert order["status"] == "delivered" and order["site"] == slug and order["unit_price_cents"] == OWN_PRICE
        view.saw(await flows.call("GET", f"/api/v1/orders/{order['order_id']}", headers=buyer_h))
        return str(order["order_id"])

    await sub_site_pages(flows, slug, product_id)
    # Commission: once per delivered order, pending through its after-sales window, then
    # available. Looked at right after each sale; see `credited` for why "available" may count.
    first = await buy()
    await credited(flows, agent, first, slug)
    second = await buy()
    await credited(flows, agent, second, slug)
    view.saw(await flows.call("GET", "/api/v1/orders", headers=buyer_h, expect=200))
    view.check_no_cost()

    # The agent sees its sub-site's orders with their commission, never the buyer's keys.
    sold = await flows.call("GET", "/api/v1/agent/orders", headers=agent, expect=200)
    assert {o["order_id"]: o["commission_cents"] for o in sold.json()["items"]} == {
        first: COMMISSION,
        second: COMMISSION,
    }
    assert "AG-KEY" not in sold.text and "recipient" not in sold.text
    assert (await flows.call("GET", f"/api/v1/orders/{first}/card-keys", headers=agent)).status_code == 404

    for order_id in (first, second):
        await commission_of(flows, agent, order_id, "available")
    balance = await commissions(flows, agent)
    assert (balance["available_cents"], balance["pending_cents"], balance["total"]) == (2 * COMMISSION, 0, 2)

    # A refund after the window reverses the commission once, from available.
    await refund(flows, buyer, first)
    reversed_late = await commission_of(flows, agent, first, "reversed")
    assert reversed_late["released_at"] is not None
    await eventually(
        lambda: _balance_is(flows, agent, available=COMMISSION, pending=0), message="available after the reversal"
    )

    # A refund inside the window reverses it from pending, before it ever became available.
    third = await buy()
    await commission_of(flows, agent, third, "pending")
    await refund(flows, buyer, third)
    reversed_early = await commission_of(flows, agent, third, "reversed")
    assert reversed_early["released_at"] is None
    await asyncio.sleep(1.5)  # a second reversal or a late release would show by now
    assert await _balance_is(flows, agent, available=COMMISSION, pending=0)

    # Withdrawals: more than available is refused; a rejection gives the money back; of two
    # racing requests for the whole amount one wins; paying twice pays once.
    over = await flows.call("POST", "/api/v1/agent/withdrawals", json={"amount_cents": COMMISSION + 1}, headers=agent)
    assert over.status_code == 409 and over.json()["type"].endswith("insufficient-available"), over.text
    w = await flows.call("POST", "/api/v1/agent/withdrawals", json={"amount_cents": COMMISSION}, headers=agent)
    assert w.status_code == 201, w.text
    assert await _balance_is(flows, agent, available=0, pending=0)
    r = await flows.call("POST", f"/api/v1/admin/withdrawals/{w.json()['withdrawal_id']}/reject", headers=STAFF)
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert await _balance_is(flows, agent, available=COMMISSION, pending=0)

    racing = await asyncio.gather(
        *(
            flows.call("POST", "/api/v1/agent/withdrawals", json={"amount_cents": COMMISSION}, headers=agent)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in racing) == [201, 409], [r.text for r in racing]
    won = next(r for r in racing if r.status_code == 201).json()["withdrawal_id"]
    queue = await flows.call("GET", "/api/v1/admin/withdrawals", params={"status": "pending"}, headers=STAFF)
    assert won in [x["withdrawal_id"] for x in queue.json()["items"]]
    approvals = await asyncio.gather(
        *(flows.call("POST", f"/api/v1/admin/withdrawals/{won}/approve", headers=STAFF) for _ in range(3))
    )
    assert {a.status_code for a in approvals} == {200} and {a.json()["status"] for a in approvals} == {"paid"}
    final = await commissions(flows, agent)
    assert (final["available_cents"], final["pending_cents"], final["withdrawing_cents"], final["paid_cents"]) == (
        0,
        0,
        0,
        COMMISSION,
    )

    # Money is conserved: the ledger of this test's movements sums to zero, the agent's buckets
    # match its balances, and buyer, agent and platform hold what they should.
    entries = list(wallet_db.ledger.find({"$or": [{"account": {"$regex": f"^agent:{agent_id}:"}}, {"account": buyer}]}))
    refs = {e["ref"] for e in entries}
    movements = list(wallet_db.ledger.find({"ref": {"$in": sorted(refs)}}))
    assert sum(e["amount_cents"] for e in movements) == 0
    by_account: dict[str, int] = {}
    for e in movements:
        by_account[e["account"]] = by_account.get(e["account"], 0) + e["amount_cents"]
    assert by_account.get(f"agent:{agent_id}:available", 0) == 0
    assert by_account.get(f"agent:{agent_id}:pending", 0) == 0
    assert by_account.get(f"agent:{agent_id}:withdrawing", 0) == 0
    assert by_account["platform:payouts"] == COMMISSION  # paid out once
    assert by_account["platform:commissions"] == -COMMISSION  # three credited, two reversed
    assert by_account[buyer] == await flows.balance(buyer) == 2 * OWN_PRICE  # three paid, two refunded
    assert len([e for e in movements if e["kind"] == "withdrawal-paid"]) == 2  # one pair

    await agent_and_console_pages(flows, agent_email, slug)


async def _balance_is(flows: Flows, headers: dict[str, str], *, available: int, pending: int) -> bool:
    body = await commissions(flows, headers)
    return bool(body["available_cents"] == available and body["pending_cents"] == pending)


async def test_staff_decide_applications_in_the_console(flows: Flows) -> None:
    """The console's decision queue (shared by agent applications and withdrawals): a rejection
    with its reason lands in the admin API and is confirmed on the list; deciding it again shows
    the API's refusal on the page (never a 5xx); an unknown action changes nothing."""
    buyer = await register(flows, f"applicant-{new_id()[:10]}@example.com")
    applied = await flows.call("POST", "/api/v1/agent/application", json={"note": "想做代理"}, headers=auth(buyer))
    application_id = applied.json()["application_id"]
    staff = await web_session(flows, DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"])

    async def status() -> str:
        r = await flows.call("GET", "/api/v1/admin/agent-applications", params={"page_size": 200}, headers=STAFF)
        return next(a["status"] for a in r.json()["items"] if a["application_id"] == application_id)

    try:
        listed = await staff.get("/admin/agents")
        assert listed.status_code == 200 and application_id in listed.text
        token = re.search(r'name="_csrf_token" value="([^"]+)"', listed.text)
        assert token is not None
        csrf = token.group(1)
        unknown = await staff.post(f"/admin/agents/{application_id}/promote", data={"_csrf_token": csrf})
        assert unknown.status_code == 200 and unknown.url.path == "/admin/agents"
        assert await status() == "pending"
        rejected = await staff.post(
            f"/admin/agents/{application_id}/reject", data={"reason": "资料不全", "_csrf_token": csrf}
        )
        assert rejected.status_code == 200 and rejected.url.path == "/admin/agents"
        assert "已驳回" in rejected.text or "Rejected." in rejected.text, rejected.text[:2000]
        assert await status() == "rejected"
        again = await staff.post(f"/admin/agents/{application_id}/approve", data={"_csrf_token": csrf})
        assert again.status_code == 409, again.text[:500]
        assert await status() == "rejected"
    finally:
        await staff.aclose()
