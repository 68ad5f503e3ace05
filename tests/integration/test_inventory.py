"""The Redis inventory scripts against a real Redis: never oversell, idempotent per order and per op."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared import redis_client
from shared.contracts.envelope import new_id
from shared.inventory import HoldResult, Inventory, Stock


@pytest.fixture
async def inventory(infra: dict[str, str]) -> AsyncIterator[Inventory]:
    redis = redis_client.connect(infra["REDIS_URL"])
    yield Inventory(redis)
    await redis.aclose()


async def test_concurrent_holds_never_oversell(inventory: Inventory) -> None:
    sku = new_id()
    assert await inventory.adjust_supply(sku, 200, op_id="import-1") == 200
    await inventory.set_holds_if_missing(sku, {})
    results = await asyncio.gather(*(inventory.hold(sku, f"order-{i}", 1) for i in range(1000)))
    assert sum(r.ok for r in results) == 200
    stock = await inventory.stock(sku)
    assert (stock.supply, stock.held, stock.sellable) == (200, 200, 0)
    refused = next(r for r in results if not r.ok)
    assert refused.units == 0


async def test_hold_and_release_are_idempotent_per_order(inventory: Inventory) -> None:
    sku = new_id()
    await inventory.adjust_supply(sku, 5, op_id="import-1")
    await inventory.set_holds_if_missing(sku, {})
    assert (await inventory.hold(sku, "o1", 3)).ok
    again = await inventory.hold(sku, "o1", 3)  # a retried request or redelivered event
    assert again.ok and again.units == 3
    assert (await inventory.stock(sku)).held == 3
    short = await inventory.hold(sku, "o2", 3)
    assert not short.ok and short.units == 2
    assert await inventory.release(sku, "o1") == 3
    assert await inventory.release(sku, "o1") == 0
    assert (await inventory.stock(sku)).held == 0


async def test_supply_changes_apply_once_per_op(inventory: Inventory) -> None:
    sku = new_id()
    assert await inventory.adjust_supply(sku, 100, op_id="batch-7") == 100
    assert await inventory.adjust_supply(sku, 100, op_id="batch-7") is None  # redelivered import
    assert await inventory.adjust_supply(sku, -2, op_id="claim-o1") == 98
    assert (await inventory.stock(sku)).supply == 98


async def test_a_claim_hands_the_orders_hold_over_in_one_step(inventory: Inventory) -> None:
    """Keys leaving supply for an order release its hold in the same script: `sellable` never
    counts them twice (out of supply and still held), and the order's own release finds nothing."""
    sku = new_id()
    await inventory.adjust_supply(sku, 3, op_id="import-1")
    await inventory.set_holds_if_missing(sku, {})
    assert (await inventory.hold(sku, "o1", 2)).ok
    assert await inventory.adjust_supply(sku, -2, op_id="claim-o1", hands_over="o1") == 1
    assert await inventory.stock(sku) == Stock(supply=1, held=0)
    assert await inventory.adjust_supply(sku, -2, op_id="claim-o1", hands_over="o1") is None  # redelivered
    assert await inventory.release(sku, "o1") == 0  # the order hears of the delivery later
    assert (await inventory.stock(sku)).sellable == 1


async def test_rebuild_after_redis_lost_everything(inventory: Inventory) -> None:
    sku = new_id()
    await inventory.adjust_supply(sku, 10, op_id="import")
    await inventory.hold(sku, "o1", 4)
    await inventory.redis.delete(*[k async for k in inventory.redis.scan_iter(match=f"inv:{{{sku}}}:*")])
    assert not await inventory.known(sku)
    # Each owner rebuilds its side from its database.
    await inventory.set_supply(sku, 10)
    assert await inventory.set_holds(sku, {"o1": 4, "o2": 1}) == 5
    assert await inventory.known(sku)
    assert (await inventory.stock(sku)).sellable == 5
    assert await inventory.release(sku, "o2") == 1
    assert (await inventory.stock(sku)).held == 4


async def test_a_missing_counter_is_never_read_as_zero(inventory: Inventory) -> None:
    """Issue 12: Redis came back empty, fulfilment rebuilt supply first, and a zero `held` sold
    the units of every open order again (66 buyers got 201 for 60 keys)."""
    sku = new_id()
    assert await inventory.hold(sku, "o1", 1) == HoldResult(ok=False, units=0, missing="held")
    assert await inventory.set_holds_if_missing(sku, {"o0": 4})
    held, supply = f"inv:{{{sku}}}:held", f"inv:{{{sku}}}:supply"
    assert await inventory.hold(sku, "o1", 1) == HoldResult(
        ok=False, units=0, missing="supply", seen=((held, "4"), (supply, None))
    )
    assert await inventory.set_supply_if_missing(sku, 5, applied_ops=["import-1", "claim-o9"])
    # A second rebuild from an older truth changes nothing; the ops it counted stay applied.
    assert not await inventory.set_supply_if_missing(sku, 9, applied_ops=["import-2"])
    assert not await inventory.set_holds_if_missing(sku, {})
    assert await inventory.adjust_supply(sku, -1, op_id="claim-o9") is None
    assert await inventory.adjust_supply(sku, 3, op_id="import-2") == 8
    assert (await inventory.stock(sku)) == Stock(supply=8, held=4)
    assert (await inventory.hold(sku, "o1", 4)).ok
    # A refusal names the counters as the script read them (what the gateway keeps it against).
    assert await inventory.hold(sku, "o2", 1) == HoldResult(ok=False, units=0, seen=((held, "8"), (supply, "8")))


async def test_epoch_markers(inventory: Inventory) -> None:
    marker = f"inv:epoch:test-{new_id()}"  # not the platform's own: its services share this Redis
    assert not await inventory.epoch_known(marker) and await inventory.epoch(marker) is None
    await inventory.mark_epoch(marker)
    assert await inventory.epoch_known(marker) and await inventory.epoch(marker) == "1"
