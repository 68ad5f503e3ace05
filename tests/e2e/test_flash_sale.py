"""The flash sale: 1,000 buyers at once for 200 card keys, then every payment capture and every
paid-order message delivered again. Exactly 200 orders are delivered, no key twice, every other
buyer is turned away or refunded in full, and no money appears or disappears."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from deploy.platform import Platform
from tests.flows import Flows
from tests.scenarios import PRICE_CENTS, duplicate_deliveries, prepare, run

BUYERS, KEYS = 1000, 200


# Setting up 1,000 funded buyers is a bank top-up each (about 7/s on a busy two-core machine),
# before the sale itself: more than the suite's default 300 s per test there.
@pytest.mark.timeout(600)
async def test_flash_sale(platform: Platform, infra: dict[str, str]) -> None:
    flows = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=200)
    try:
        sale = await prepare(flows, buyers=BUYERS, keys=KEYS)
        await run(flows, sale)

        statuses = Counter(o["status"] for o in sale.final.values())
        assert statuses["delivered"] == KEYS, (statuses, sale.answers)
        # Everyone else was turned away at the door (409) or, if an order got through, refunded.
        assert sale.answers[409] + sum(statuses.values()) == BUYERS, (statuses, sale.answers)
        assert set(statuses) <= {"delivered", "refunded", "cancelled"}, statuses

        repeated = await duplicate_deliveries(infra["KAFKA_BOOTSTRAP_SERVERS"])
        assert repeated >= 2 * KEYS
        await asyncio.sleep(3)  # let the duplicates be consumed

        delivered = [(oid, sale.placed[oid]) for oid, o in sale.final.items() if o["status"] == "delivered"]
        keys = await asyncio.gather(*(flows.card_keys(user, oid) for oid, user in delivered))
        handed_out = [code for codes in keys for code in codes]
        assert len(handed_out) == KEYS and len(set(handed_out)) == KEYS  # one key each, none twice
        assert set(handed_out) <= set(sale.codes)

        refreshed = await asyncio.gather(*(flows.get_order(user, oid) for oid, user in delivered))
        assert all(o["status"] == "delivered" for o in refreshed)  # the duplicates changed nothing

        balances = await asyncio.gather(*(flows.balance(u) for u in sale.buyers))
        spent = sum(PRICE_CENTS - (b or 0) for b in balances)
        assert spent == KEYS * PRICE_CENTS  # money conserved: only delivered orders were paid for
        stock = (
            await flows.call("GET", f"/api/v1/admin/skus/{sale.sku_id}/stock", headers=flows.admin, expect=200)
        ).json()
        assert stock["available"] == 0 and stock["sold"] == KEYS
    finally:
        await flows.close()
