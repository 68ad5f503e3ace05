"""The catalog's browse cache (services/catalog/cache.py): a read is served from memory until the
catalog changes here (at once) or on another replica (at the next generation check); a load
that raced a change is not kept; the stock state stays live; through the use cases, every write
empties it before its caller gets the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.catalog import usecases
from services.catalog.cache import GENERATION_KEY, BrowseCache, browse_key
from services.catalog.schemas import CategoryIn, ProductIn, ScenarioIn
from shared.paging import Paging
from tests.unit.test_catalog_usecases import FakeGenerations, World, sku_in
from tests.unit.test_catalog_usecases import world as world


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loads:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        return self.count


async def test_a_read_is_loaded_once_then_served_from_memory() -> None:
    cache, load = BrowseCache(FakeGenerations()), Loads()
    assert [await cache.get(browse_key("tree"), load) for _ in range(3)] == [1, 1, 1]
    assert load.count == 1


async def test_keys_keep_their_dimensions_apart() -> None:
    assert browse_key("product", "p1", "vip") != browse_key("product", "p1", "retail")
    assert browse_key("tree") != browse_key("tree", site="s2")


async def test_a_change_here_empties_it_at_once_and_tells_the_other_replicas() -> None:
    shared = FakeGenerations()
    clock = Clock()
    here, there = BrowseCache(shared, clock=clock), BrowseCache(shared, clock=clock, check_seconds=1.0)
    load_here, load_there = Loads(), Loads()
    await here.get("k", load_here)
    await there.get("k", load_there)
    await here.changed()
    assert await here.get("k", load_here) == 2  # this replica: at once
    assert await there.get("k", load_there) == 1  # another replica: not before its next check...
    clock.now += 1.0
    assert await there.get("k", load_there) == 2  # ...and then
    assert shared.values[GENERATION_KEY] == 1


async def test_an_entry_expires_after_its_max_age_even_without_a_change() -> None:
    clock = Clock()
    cache, load = BrowseCache(FakeGenerations(), clock=clock, max_age_seconds=60), Loads()
    await cache.get("k", load)
    clock.now += 59
    assert await cache.get("k", load) == 1
    clock.now += 2
    assert await cache.get("k", load) == 2


async def test_a_load_that_raced_a_change_is_not_kept() -> None:
    cache = BrowseCache(FakeGenerations())
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_old_read() -> str:
        started.set()
        await release.wait()
        return "before the change"

    reading = asyncio.create_task(cache.get("k", slow_old_read))
    await started.wait()
    await cache.changed()
    release.set()
    assert await reading == "before the change"  # that caller asked before the change: fine

    async def fresh() -> str:
        return "after the change"

    assert await cache.get("k", fresh) == "after the change"


async def test_a_failed_load_keeps_nothing() -> None:
    cache = BrowseCache(FakeGenerations())

    async def missing() -> int:
        raise LookupError("404")

    with pytest.raises(LookupError):
        await cache.get("k", missing)
    assert await cache.get("k", Loads()) == 1


async def test_without_redis_it_serves_from_the_database() -> None:
    class Down:
        async def get(self, name: str) -> Any:
            raise RedisConnectionError("down")

        async def incr(self, name: str) -> Any:
            raise RedisConnectionError("down")

    cache, load = BrowseCache(Down()), Loads()
    assert [await cache.get("k", load) for _ in range(2)] == [1, 2]
    await cache.changed()  # a write still succeeds; only the announcement is lost


async def test_it_is_bounded() -> None:
    cache = BrowseCache(FakeGenerations(), max_entries=2)
    for key in ("a", "b", "c"):
        await cache.get(key, Loads())
    load_a = Loads()
    assert await cache.get("a", load_a) == 1 and load_a.count == 1  # "a" was the oldest: dropped


async def test_browsing_through_the_use_cases_follows_every_write(world: World) -> None:
    scenario_id = await usecases.create_scenario(world.deps, ScenarioIn("通信充值"))
    category_id = await usecases.create_category(world.deps, CategoryIn(scenario_id, "话费充值"))
    product_id = await usecases.create_product(world.deps, ProductIn(category_id=category_id, name="中国移动话费"))
    assert (await usecases.tree(world.deps)).scenarios[0].categories[0].products == []
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    tree = await usecases.tree(world.deps)
    assert [p.name for p in tree.scenarios[0].categories[0].products] == ["中国移动话费"]
    found = await usecases.search_products(world.deps, Paging(1, 20), q="移动", category_id=None, scenario_id=None)
    assert found.total == 1

    retail = await usecases.product_detail(world.deps, product_id, None)
    assert retail.skus[0].price_cents == 9900 and retail.skus[0].stock == "out_of_stock"
    world.inventory.supply[sku_id] = 100  # keys imported: the stock is live, the cache keeps none
    assert (await usecases.product_detail(world.deps, product_id, None)).skus[0].stock == "in_stock"
    assert (await usecases.product_detail(world.deps, product_id, "vip")).skus[0].price_cents == 9700

    await usecases.update_sku(world.deps, sku_id, {"prices": {"retail": 9800}})
    assert (await usecases.product_detail(world.deps, product_id, None)).skus[0].price_cents == 9800
    await usecases.update_product(world.deps, product_id, {"name": "移动话费"})
    assert (await usecases.tree(world.deps)).scenarios[0].categories[0].products[0].name == "移动话费"
    await usecases.update_sku(world.deps, sku_id, {"on_sale": False})
    assert (await usecases.tree(world.deps)).scenarios[0].categories[0].products == []
    assert (
        await usecases.search_products(world.deps, Paging(1, 20), q="移动", category_id=None, scenario_id=None)
    ).total == 0


async def test_the_generation_an_answer_declares_is_the_one_its_entries_were_loaded_under() -> None:
    shared = FakeGenerations()
    clock = Clock()
    cache = BrowseCache(shared, clock=clock)
    # Before this replica read the counter it names none Redis could hold: the gateway keeps nothing.
    key, before = cache.generation_fact()
    assert key == GENERATION_KEY and before not in (None, 0, b"0")
    await cache.get("k", Loads())
    assert cache.generation_fact() == (GENERATION_KEY, None)  # no change yet: the key is missing
    await cache.changed()
    assert cache.generation_fact() == (GENERATION_KEY, shared.values[GENERATION_KEY])
    # A change made by another replica is declared only once this one has seen it.
    await shared.incr(GENERATION_KEY)
    assert cache.generation_fact()[1] != shared.values[GENERATION_KEY]
    clock.now += 1.0
    await cache.get("k", Loads())
    assert cache.generation_fact()[1] == shared.values[GENERATION_KEY]
