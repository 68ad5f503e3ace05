"""Seams between the catalog and the order service, through the gateway on the real stack: a SKU
the admin API has just created is quoted and ordered at once, with no sleep and no retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.platform import Platform
from tests.flows import Flows
from tests.helpers import auth

PRICE = 1200


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def test_a_sku_just_created_is_quoted_at_once_not_no_such_product(flows: Flows) -> None:
    for _ in range(3):  # a few times: the race is won or lost by milliseconds
        sku_id = await flows.create_sku(price_cents=PRICE)
        quote = await flows.call("POST", "/api/v1/orders/quote", json={"sku_id": sku_id, "quantity": 2}, headers=auth())
        assert quote.status_code == 200, quote.text
        assert quote.json()["total_cents"] == 2 * PRICE


async def test_an_unknown_sku_is_still_422_on_sku_id(flows: Flows) -> None:
    quote = await flows.call(
        "POST", "/api/v1/orders/quote", json={"sku_id": "no-such-sku", "quantity": 1}, headers=auth()
    )
    assert quote.status_code == 422, quote.text
    assert quote.json()["errors"][0]["field"] == "sku_id"
