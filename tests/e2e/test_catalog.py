"""The catalog through the gateway: browse the tree, search (Chinese), filter, paginate, product
detail priced for the caller's level, admin changes as `catalog.sku-changed` and
`catalog.product-changed` events, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from deploy.platform import Platform
from shared.contracts.envelope import new_id
from shared.messaging.scan import scan
from tests.e2e.catalog_kit import ADMIN, create, product, sku, tree_path
from tests.helpers import auth, wait_until


@pytest.fixture
def gateway(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def mobile(gateway: httpx.Client) -> dict[str, str]:
    """通信充值 → 话费充值 → 中国移动话费 → 中国移动 100 元, priced per level, with tiers."""
    tag = new_id()[:6]
    scenario_id, category_id = tree_path(gateway, f"通信充值-{tag}", "话费充值")
    product_id = product(gateway, category_id, f"中国移动话费 {tag}", description="全国通用", service_notes="自动发货")
    sku_id = sku(
        gateway,
        product_id,
        name=f"中国移动 100 元 {tag}",
        prices={"retail": 9900, "vip": 9700, "wholesale": 9400},
        wholesale=[{"min_quantity": 10, "price_cents": 9500}, {"min_quantity": 100, "price_cents": 9300}],
        recipient_fields=[{"name": "mobile", "label": "手机号", "pattern": r"1[3-9]\d{9}"}],
        max_per_order=50,
    )
    return {
        "tag": tag,
        "scenario_id": scenario_id,
        "category_id": category_id,
        "product_id": product_id,
        "sku_id": sku_id,
    }


def test_tree_lists_scenario_category_product(gateway: httpx.Client, mobile: dict[str, str]) -> None:
    r = gateway.get("/api/v1/catalog/tree")
    assert r.status_code == 200, r.text
    scenario = next(s for s in r.json()["scenarios"] if s["scenario_id"] == mobile["scenario_id"])
    assert scenario["name"] == f"通信充值-{mobile['tag']}"
    (category,) = scenario["categories"]
    assert category == {
        "category_id": mobile["category_id"],
        "name": "话费充值",
        "products": [{"product_id": mobile["product_id"], "name": f"中国移动话费 {mobile['tag']}"}],
    }


def test_search_by_chinese_name_category_and_pages(gateway: httpx.Client, mobile: dict[str, str]) -> None:
    found = gateway.get("/api/v1/catalog/products", params={"q": f"移动话费 {mobile['tag']}"}).json()
    assert [p["product_id"] for p in found["items"]] == [mobile["product_id"]] and found["total"] == 1
    # The SKU's name is searchable too, case-insensitively.
    by_sku = gateway.get("/api/v1/catalog/products", params={"q": f"100 元 {mobile['tag'].upper()}"}).json()
    assert [p["product_id"] for p in by_sku["items"]] == [mobile["product_id"]]
    assert gateway.get("/api/v1/catalog/products", params={"q": f"联通 {mobile['tag']}"}).json()["total"] == 0
    # The buyer's text is matched literally, never as a pattern.
    assert gateway.get("/api/v1/catalog/products", params={"q": ".*"}).json()["total"] == 0

    _, category_id = tree_path(gateway, "游戏点卡", "网易一卡通")
    ids = []
    for i in range(3):
        pid = product(gateway, category_id, f"网易一卡通 {i}")
        sku(gateway, pid, name=f"{i * 10 + 10} 元")
        ids.append(pid)
    product(gateway, category_id, "没有 SKU 的商品")  # not listed: nothing to buy
    first = gateway.get("/api/v1/catalog/products", params={"category_id": category_id, "page_size": 2}).json()
    second = gateway.get(
        "/api/v1/catalog/products", params={"category_id": category_id, "page_size": 2, "page": 2}
    ).json()
    assert first["total"] == second["total"] == 3
    assert [p["product_id"] for p in first["items"] + second["items"]] == ids
    r = gateway.get("/api/v1/catalog/products", params={"page_size": 1000})
    assert r.status_code == 400 or r.status_code == 422, r.text


def test_detail_is_priced_for_the_callers_level(gateway: httpx.Client, mobile: dict[str, str]) -> None:
    path = f"/api/v1/catalog/products/{mobile['product_id']}"

    def sku_view(headers: dict[str, str]) -> dict[str, object]:
        r = gateway.get(path, headers=headers)
        assert r.status_code == 200, r.text
        (view,) = r.json()["skus"]
        return view  # type: ignore[no-any-return]

    anonymous = sku_view({})
    assert anonymous["price_cents"] == 9900
    assert anonymous["wholesale"] == [
        {"min_quantity": 10, "price_cents": 9500},
        {"min_quantity": 100, "price_cents": 9300},
    ]
    assert anonymous["delivery_mode"] == "auto" and anonymous["validity_days"] == 365
    assert anonymous["recipient_fields"][0]["name"] == "mobile"
    assert anonymous["stock"] == "out_of_stock"  # no card keys imported
    assert sku_view(auth(level="retail"))["price_cents"] == 9900
    vip = sku_view(auth(level="vip"))
    assert vip["price_cents"] == 9700
    # An agent has no price of its own: the nearest level above (vip), never retail.
    assert sku_view(auth(level="agent"))["price_cents"] == 9700
    wholesale = sku_view(auth(level="wholesale"))
    assert wholesale["price_cents"] == 9400
    assert wholesale["wholesale"] == [{"min_quantity": 100, "price_cents": 9300}]  # only tiers that help
    detail = gateway.get(path).json()
    assert detail["name"].startswith("中国移动话费") and detail["service_notes"] == "自动发货"
    assert detail["category_name"] == "话费充值" and detail["level"] == "retail"


def _sku_events(infra: dict[str, str], sku_id: str) -> list[dict[str, object]]:
    records = asyncio.run(scan(infra["KAFKA_BOOTSTRAP_SERVERS"], ["catalog.events"]))
    events = [json.loads(r.value) for r in records]
    return [e["data"] for e in events if e["type"] == "catalog.sku-changed" and e["key"] == sku_id]


def test_changes_are_events_and_off_sale_hides_the_sku(
    gateway: httpx.Client, mobile: dict[str, str], infra: dict[str, str]
) -> None:
    sku_id = mobile["sku_id"]
    r = gateway.patch(f"/api/v1/admin/skus/{sku_id}", json={"prices": {"retail": 9800, "vip": 9600}}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["revision"] == 2, r.text
    r = gateway.patch(f"/api/v1/admin/skus/{sku_id}", json={"on_sale": False}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["revision"] == 3
    assert gateway.get(f"/api/v1/catalog/products/{mobile['product_id']}").status_code == 404
    assert gateway.get("/api/v1/catalog/products", params={"q": mobile["tag"]}).json()["total"] == 0

    events = wait_until(lambda: (e := _sku_events(infra, sku_id)) and len(e) >= 3 and e, message="3 sku-changed events")
    assert [e["revision"] for e in events] == [1, 2, 3]
    assert events[1]["prices"] == {"retail": 9800, "vip": 9600}
    assert events[2]["on_sale"] is False and events[2]["category_id"] == mobile["category_id"]
    assert events[0]["recipient_fields"][0]["pattern"] == r"1[3-9]\d{9}"

    # Renaming the product reaches the projections too: every SKU under it gets a new revision.
    r = gateway.patch(f"/api/v1/admin/products/{mobile['product_id']}", json={"name": "移动话费(新)"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    events = wait_until(lambda: (e := _sku_events(infra, sku_id)) and len(e) >= 4 and e, message="rename event")
    assert events[3]["revision"] == 4 and events[3]["product_name"] == "移动话费(新)"
    admin_view = gateway.get(f"/api/v1/admin/skus/{sku_id}", headers=ADMIN).json()
    assert admin_view["revision"] == 4 and admin_view["on_sale"] is False
    admin_product = gateway.get(f"/api/v1/admin/products/{mobile['product_id']}", headers=ADMIN).json()
    assert admin_product["listed"] is False and [s["sku_id"] for s in admin_product["skus"]] == [sku_id]
    assert gateway.get(f"/api/v1/admin/products/{mobile['product_id']}", headers=auth()).status_code == 403


def _product_events(infra: dict[str, str], product_id: str) -> list[dict[str, object]]:
    records = asyncio.run(scan(infra["KAFKA_BOOTSTRAP_SERVERS"], ["catalog.events"]))
    events = [json.loads(r.value) for r in records]
    return [e["data"] for e in events if e["type"] == "catalog.product-changed" and e["key"] == product_id]


def test_product_changes_and_listing_are_events_with_the_service_notes(
    gateway: httpx.Client, mobile: dict[str, str], infra: dict[str, str]
) -> None:
    product_id = mobile["product_id"]
    r = gateway.patch(f"/api/v1/admin/products/{product_id}", json={"service_notes": "到账 1 分钟内"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = gateway.patch(f"/api/v1/admin/skus/{mobile['sku_id']}", json={"on_sale": False}, headers=ADMIN)
    assert r.status_code == 200, r.text

    # created (not listed) -> its first SKU lists it -> notes edited -> its last SKU unlists it
    events = wait_until(
        lambda: (e := _product_events(infra, product_id)) and len(e) >= 4 and e, message="4 product-changed events"
    )
    assert [(e["revision"], e["listed"]) for e in events] == [(1, False), (2, True), (3, True), (4, False)]
    assert [e["service_notes"] for e in events] == ["自动发货", "自动发货", "到账 1 分钟内", "到账 1 分钟内"]
    assert events[0]["description"] == "全国通用" and events[0]["category_id"] == mobile["category_id"]
    assert all("prices" not in e for e in events)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prices": {"vip": 900}}, "prices.retail"),
        ({"prices": {"retail": 900, "vip": 950}}, "prices.vip"),
        ({"prices": {"retail": 900, "boss": 1}}, "prices"),
        ({"prices": {"retail": -1}}, "prices"),
        ({"wholesale": [{"min_quantity": 10, "price_cents": 99999}]}, "wholesale[0].price_cents"),
        (
            {"recipient_fields": [{"name": "mobile", "label": "手机", "pattern": "1[3-9"}]},
            "recipient_fields[0].pattern",
        ),
        ({"delivery_mode": "teleport"}, "delivery_mode"),
        ({"face_value_cents": 1.5}, "face_value_cents"),
    ],
)
def test_bad_sku_definitions_are_422_and_change_nothing(
    gateway: httpx.Client, mobile: dict[str, str], body: dict[str, object], field: str
) -> None:
    good = {"name": "x", "face_value_cents": 1000, "prices": {"retail": 900}, "delivery_mode": "auto"}
    r = gateway.post(f"/api/v1/admin/products/{mobile['product_id']}/skus", json={**good, **body}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
    r = gateway.patch(f"/api/v1/admin/skus/{mobile['sku_id']}", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    view = gateway.get(f"/api/v1/admin/skus/{mobile['sku_id']}", headers=ADMIN).json()
    assert view["revision"] == 1 and view["prices"] == {"retail": 9900, "vip": 9700, "wholesale": 9400}
    (only,) = gateway.get(f"/api/v1/catalog/products/{mobile['product_id']}").json()["skus"]
    assert only["sku_id"] == mobile["sku_id"]


def test_admin_endpoints_need_the_admin_role(gateway: httpx.Client, mobile: dict[str, str]) -> None:
    assert gateway.post("/api/v1/admin/scenarios", json={"name": "x"}).status_code == 401
    assert gateway.post("/api/v1/admin/scenarios", json={"name": "x"}, headers=auth()).status_code == 403
    r = gateway.patch(f"/api/v1/admin/skus/{mobile['sku_id']}", json={"on_sale": False}, headers=auth(level="vip"))
    assert r.status_code == 403
    r = gateway.post("/api/v1/admin/categories", json={"scenario_id": "nope", "name": "x"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scenario_id"
    assert gateway.get("/api/v1/catalog/products/nope").status_code == 404
    assert create(gateway, "scenarios", {"name": "  空白  "})
