"""Quick-access shortcuts (首页快捷入口) end to end through the gateway: a buyer pins up to 12
categories or products, in order, and reads them back with their titles; bad pins change
nothing; each buyer has their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.platform import Platform
from tests.flows import Flows
from tests.helpers import auth

PATH = "/api/v1/me/shortcuts"


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def test_pin_read_and_refuse_bad_shortcuts(flows: Flows) -> None:
    sku_id = await flows.create_sku()
    sku = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}", headers=flows.admin, expect=200)).json()
    product = (
        await flows.call("GET", f"/api/v1/admin/products/{sku['product_id']}", headers=flows.admin, expect=200)
    ).json()
    me, other = auth(), auth()
    assert (await flows.call("GET", PATH, headers=me, expect=200)).json() == {"shortcuts": []}

    pins = [{"kind": "product", "id": product["product_id"]}, {"kind": "category", "id": product["category_id"]}]
    saved = (await flows.call("PUT", PATH, json={"shortcuts": pins}, headers=me, expect=200)).json()
    assert [(s["kind"], s["id"]) for s in saved["shortcuts"]] == [(p["kind"], p["id"]) for p in pins]
    assert saved["shortcuts"][0]["title"] == product["name"] and saved["shortcuts"][1]["title"].startswith("话费充值")
    assert (await flows.call("GET", PATH, headers=me, expect=200)).json() == saved
    assert (await flows.call("GET", PATH, headers=other, expect=200)).json() == {"shortcuts": []}

    bad = [
        {"shortcuts": [*pins, pins[0]]},  # the same product twice
        {"shortcuts": [{"kind": "product", "id": "no-such-product"}]},
        {"shortcuts": [{"kind": "scenario", "id": product["category_id"]}]},
        {"shortcuts": [pins[1]] * 13},  # more than 12
        {"shortcuts": pins, "extra": 1},
    ]
    for body in bad:
        r = await flows.call("PUT", PATH, json=body, headers=me)
        assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert (await flows.call("GET", PATH, headers=me, expect=200)).json() == saved  # nothing changed
    assert (await flows.call("GET", PATH)).status_code == 401
    # Unpinning everything is allowed.
    assert (await flows.call("PUT", PATH, json={"shortcuts": []}, headers=me, expect=200)).json() == {"shortcuts": []}
