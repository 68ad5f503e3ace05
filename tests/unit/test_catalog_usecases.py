"""The catalog's use cases over in-memory fakes of its store, inventory and unit of work: SKU
rules keep bad definitions out, prices follow the caller's level, stock follows the counters,
changes are events, unknown ids are 404."""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import pytest

from services.catalog import usecases
from services.catalog.cache import BrowseCache
from services.catalog.deps import CatalogDeps
from services.catalog.schemas import CategoryIn, ProductIn, ScenarioIn, SkuIn
from services.catalog.settings import CatalogSettings
from shared.contracts.catalog import SkuChanged
from shared.errors import Problem
from shared.inventory import Stock
from shared.messaging.outbox import Tx
from shared.paging import Paging

T = TypeVar("T")
Doc = dict[str, Any]


# -- fakes ----------------------------------------------------------------------------------------


@dataclass
class FakeStore:
    """`CatalogStore` over dicts, with the same method names and results."""

    scenarios_: dict[str, Doc] = field(default_factory=dict)
    categories_: dict[str, Doc] = field(default_factory=dict)
    products_: dict[str, Doc] = field(default_factory=dict)
    skus_: dict[str, Doc] = field(default_factory=dict)
    before_sku_update: Callable[[str], None] | None = None
    """Lets a test change a SKU between its read and the guarded write (a concurrent admin)."""

    async def scenarios(self) -> list[Doc]:
        return sorted(self.scenarios_.values(), key=lambda d: (d["name"], d["_id"]))

    async def categories(self) -> list[Doc]:
        return sorted(self.categories_.values(), key=lambda d: (d["name"], d["_id"]))

    async def listed_products(self) -> list[Doc]:
        return sorted((p for p in self.products_.values() if p["listed"]), key=lambda d: d["name"])

    async def category_ids(self, scenario_id: str) -> list[str]:
        return [c["_id"] for c in self.categories_.values() if c["scenario_id"] == scenario_id]

    async def search_listed(
        self, q: str | None, category_ids: list[str] | None, *, skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        def matches(p: Doc) -> bool:
            if not p["listed"] or (category_ids is not None and p["category_id"] not in category_ids):
                return False
            if not q or not q.strip():
                return True
            needle = re.compile(re.escape(q.strip()), re.IGNORECASE)
            return any(needle.search(n) for n in [p["name"], *p["sku_names"]])

        found = sorted((p for p in self.products_.values() if matches(p)), key=lambda d: (d["name"], d["_id"]))
        return found[skip : skip + limit], len(found)

    # Reads hand out copies, as a database does: changing the store never changes what was read.

    async def scenario(self, scenario_id: str | None, tx: Tx | None = None) -> Doc | None:
        return copy.deepcopy(self.scenarios_.get(scenario_id or ""))

    async def category(self, category_id: str | None, tx: Tx | None = None) -> Doc | None:
        return copy.deepcopy(self.categories_.get(category_id or ""))

    async def product(self, product_id: str, tx: Tx | None = None) -> Doc | None:
        return copy.deepcopy(self.products_.get(product_id))

    async def sku(self, sku_id: str, tx: Tx | None = None) -> Doc | None:
        return copy.deepcopy(self.skus_.get(sku_id))

    async def on_sale_skus(self, product_id: str) -> list[Doc]:
        skus = [s for s in self.skus_.values() if s["product_id"] == product_id and s["on_sale"]]
        return copy.deepcopy(sorted(skus, key=lambda s: (s["face_value_cents"], s["_id"])))

    async def skus_of(self, product_id: str) -> list[Doc]:
        skus = [s for s in self.skus_.values() if s["product_id"] == product_id]
        return copy.deepcopy(sorted(skus, key=lambda s: (s["created_at"], s["_id"])))

    async def add_scenario(self, doc: Doc) -> None:
        self.scenarios_[doc["_id"]] = copy.deepcopy(doc)

    async def rename_scenario(self, scenario_id: str, name: str) -> bool:
        if scenario_id not in self.scenarios_:
            return False
        self.scenarios_[scenario_id]["name"] = name
        return True

    async def add_category(self, tx: Tx, doc: Doc) -> None:
        self.categories_[doc["_id"]] = copy.deepcopy(doc)

    async def update_category(self, tx: Tx, category_id: str, *, name: str, scenario_id: str) -> None:
        self.categories_[category_id].update(name=name, scenario_id=scenario_id)

    async def product_ids_in(self, tx: Tx, category_id: str) -> list[str]:
        return [p["_id"] for p in self.products_.values() if p["category_id"] == category_id]

    async def add_product(self, tx: Tx, doc: Doc) -> None:
        self.products_[doc["_id"]] = copy.deepcopy(doc)

    async def update_product(self, tx: Tx, product_id: str, fields: Doc) -> Doc | None:
        product = self.products_.get(product_id)
        if product is None:
            return None
        product.update(copy.deepcopy(fields))
        product["revision"] = product.get("revision", 0) + 1
        return copy.deepcopy(product)

    async def on_sale_sku_names(self, tx: Tx, product_id: str) -> list[str]:
        return [s["name"] for s in self.skus_.values() if s["product_id"] == product_id and s["on_sale"]]

    async def set_listing(self, tx: Tx, product_id: str, *, sku_names: list[str], listed: bool) -> Doc | None:
        product = self.products_[product_id]
        product["sku_names"] = sku_names
        if product["listed"] == listed:
            return None
        product["listed"] = listed
        product["revision"] = product.get("revision", 0) + 1
        return copy.deepcopy(product)

    async def add_sku(self, tx: Tx, doc: Doc) -> None:
        self.skus_[doc["_id"]] = copy.deepcopy(doc)

    async def update_sku(self, tx: Tx, sku_id: str, *, revision: int, changes: Doc) -> Doc | None:
        if self.before_sku_update is not None:
            self.before_sku_update(sku_id)
        sku = self.skus_.get(sku_id)
        if sku is None or sku["revision"] != revision:
            return None
        sku.update(copy.deepcopy(changes))
        sku["revision"] += 1
        return copy.deepcopy(sku)

    async def bump_revisions(self, tx: Tx, product_ids: list[str]) -> list[Doc]:
        bumped = []
        for sku in self.skus_.values():
            if sku["product_id"] in product_ids:
                sku["revision"] += 1
                bumped.append(copy.deepcopy(sku))
        return bumped

    async def products_by_id(self, tx: Tx, product_ids: list[str]) -> dict[str, Doc]:
        return {i: copy.deepcopy(self.products_[i]) for i in product_ids if i in self.products_}

    async def categories_by_id(self, tx: Tx, category_ids: list[str]) -> dict[str, Doc]:
        return {i: copy.deepcopy(self.categories_[i]) for i in category_ids if i in self.categories_}


class FakeUnitOfWork:
    """All or nothing like the real one: a function that raises leaves the store as it was and
    emits nothing; events of committed work are kept in `events`."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.events: list[Any] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        saved = copy.deepcopy(self.store.__dict__)
        tx = Tx(db=None, session=None, producer="catalog")  # type: ignore[arg-type]
        try:
            result = await fn(tx)
        except BaseException:
            self.store.__dict__.update(saved)
            raise
        self.events += [msgspec.json.decode(bytes(env.data)) | {"type": env.type} for env, _ in tx.events]
        return result


@dataclass
class FakeInventory:
    supply: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    async def stocks(self, sku_ids: list[str], readings: list[tuple[str, object]] | None = None) -> dict[str, Stock]:
        if readings is not None:
            for s in sku_ids:
                readings += [(f"supply:{s}", self.supply.get(s)), (f"held:{s}", self.held.get(s))]
        return {s: Stock(supply=self.supply.get(s, 0), held=self.held.get(s, 0)) for s in sku_ids}


@dataclass
class FakeGenerations:
    """The Redis counter the browse cache follows."""

    values: dict[str, int] = field(default_factory=dict)

    async def get(self, name: str) -> int | None:
        return self.values.get(name)

    async def incr(self, name: str) -> int:
        self.values[name] = self.values.get(name, 0) + 1
        return self.values[name]


@dataclass
class World:
    deps: CatalogDeps
    store: FakeStore
    uow: FakeUnitOfWork
    inventory: FakeInventory

    @property
    def sku_events(self) -> list[Doc]:
        return [e for e in self.uow.events if e["type"] == "catalog.sku-changed"]

    @property
    def product_events(self) -> list[Doc]:
        return [e for e in self.uow.events if e["type"] == "catalog.product-changed"]


@pytest.fixture
def world() -> World:
    store = FakeStore()
    uow = FakeUnitOfWork(store)
    inventory = FakeInventory()
    deps = CatalogDeps(
        settings=CatalogSettings(catalog_low_stock_threshold=10),
        store=store,  # type: ignore[arg-type]
        inventory=inventory,  # type: ignore[arg-type]
        uow=uow,  # type: ignore[arg-type]
        browse=BrowseCache(FakeGenerations()),
    )
    return World(deps, store, uow, inventory)


def sku_in(**overrides: Any) -> SkuIn:
    body: Doc = {
        "name": " 中国移动 100 元 ",
        "face_value_cents": 10000,
        "prices": {"retail": 9900, "vip": 9700, "wholesale": 9400},
        "wholesale": [{"min_quantity": 10, "price_cents": 9500}, {"min_quantity": 100, "price_cents": 9300}],
        "delivery_mode": "auto",
        "recipient_fields": [{"name": "mobile", "label": "手机号", "pattern": r"1[3-9]\d{9}"}],
        "max_per_order": 50,
        **overrides,
    }
    return msgspec.convert(body, SkuIn)


async def a_product(world: World) -> tuple[str, str, str]:
    """通信充值 → 话费充值 → 中国移动话费: (scenario, category, product) ids."""
    scenario_id = await usecases.create_scenario(world.deps, ScenarioIn(" 通信充值 "))
    category_id = await usecases.create_category(world.deps, CategoryIn(scenario_id, "话费充值"))
    product_id = await usecases.create_product(
        world.deps, ProductIn(category_id=category_id, name="中国移动话费", service_notes="自动发货")
    )
    return scenario_id, category_id, product_id


def problem(exc: pytest.ExceptionInfo[Problem]) -> tuple[int, list[str]]:
    extra = exc.value.extra if isinstance(exc.value.extra, dict) else {}
    return exc.value.status_code, [e["field"] for e in extra.get("errors", [])]


# -- creating a SKU -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prices": {"vip": 900}}, "prices.retail"),
        ({"prices": {"retail": 900, "vip": 950}}, "prices.vip"),
        ({"prices": {"retail": 900, "boss": 1}}, "prices"),
        ({"wholesale": [{"min_quantity": 10, "price_cents": 99999}]}, "wholesale[0].price_cents"),
        ({"delivery_mode": "direct", "recipient_fields": []}, "recipient_fields"),
        ({"max_per_order": 20, "max_per_user": 10}, "max_per_order"),
    ],
)
async def test_an_invalid_sku_is_a_validation_problem_and_stores_nothing(
    world: World, overrides: Doc, field: str
) -> None:
    _, _, product_id = await a_product(world)
    with pytest.raises(Problem) as exc:
        await usecases.create_sku(world.deps, product_id, sku_in(**overrides))
    status, fields = problem(exc)
    assert status == 422 and field in fields
    assert world.store.skus_ == {} and world.sku_events == []
    assert world.store.products_[product_id]["listed"] is False


async def test_a_valid_sku_is_stored_lists_its_product_and_is_announced(world: World) -> None:
    _, category_id, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    stored = world.store.skus_[sku_id]
    assert stored["name"] == "中国移动 100 元" and stored["revision"] == 1 and stored["on_sale"] is True
    assert world.store.products_[product_id]["listed"] is True
    assert world.store.products_[product_id]["sku_names"] == ["中国移动 100 元"]
    (event,) = world.sku_events
    changed = msgspec.convert({k: v for k, v in event.items() if k != "type"}, SkuChanged)
    assert changed.sku_id == sku_id and changed.revision == 1
    assert changed.product_name == "中国移动话费" and changed.category_id == category_id
    assert changed.prices == {"retail": 9900, "vip": 9700, "wholesale": 9400}
    assert changed.recipient_fields[0].pattern == r"1[3-9]\d{9}"


# -- product detail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "price", "tiers"),
    [
        (None, 9900, [(10, 9500), (100, 9300)]),
        ("retail", 9900, [(10, 9500), (100, 9300)]),
        ("vip", 9700, [(10, 9500), (100, 9300)]),
        ("agent", 9700, [(10, 9500), (100, 9300)]),  # no agent price: the nearest level above, vip
        ("wholesale", 9400, [(100, 9300)]),  # only the tiers that help
        ("emperor", 9900, [(10, 9500), (100, 9300)]),  # unknown levels price as retail
    ],
)
async def test_detail_prices_for_the_callers_level(
    world: World, level: str | None, price: int, tiers: list[tuple[int, int]]
) -> None:
    scenario_id, category_id, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    detail = await usecases.product_detail(world.deps, product_id, level)
    (view,) = detail.skus
    assert view.sku_id == sku_id and view.price_cents == price
    assert [(t.min_quantity, t.price_cents) for t in view.wholesale] == tiers
    assert detail.level == (level if level in ("retail", "vip", "agent", "wholesale") else "retail")
    assert (detail.category_id, detail.category_name) == (category_id, "话费充值")
    assert (detail.scenario_id, detail.scenario_name) == (scenario_id, "通信充值")
    assert detail.service_notes == "自动发货"


@pytest.mark.parametrize(
    ("supply", "held", "mode", "state"),
    [
        (0, 0, "auto", "out_of_stock"),
        (5, 5, "auto", "out_of_stock"),
        (20, 15, "auto", "low"),
        (10, 0, "auto", "low"),
        (11, 0, "auto", "in_stock"),
        (0, 0, "direct", "in_stock"),
        (0, 0, "manual", "in_stock"),
    ],
)
async def test_stock_state_comes_from_the_counters(world: World, supply: int, held: int, mode: str, state: str) -> None:
    _, _, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in(delivery_mode=mode))
    world.inventory.supply[sku_id] = supply
    world.inventory.held[sku_id] = held
    (view,) = (await usecases.product_detail(world.deps, product_id, None)).skus
    assert view.stock == state


async def test_detail_lists_only_on_sale_skus_cheapest_first(world: World) -> None:
    _, _, product_id = await a_product(world)
    big = await usecases.create_sku(world.deps, product_id, sku_in(name="200 元", face_value_cents=20000))
    small = await usecases.create_sku(world.deps, product_id, sku_in(name="50 元", face_value_cents=5000))
    await usecases.create_sku(world.deps, product_id, sku_in(name="停售", on_sale=False))
    detail = await usecases.product_detail(world.deps, product_id, None)
    assert [s.sku_id for s in detail.skus] == [small, big]


# -- changes --------------------------------------------------------------------------------------


async def test_a_patch_takes_a_sku_off_sale(world: World) -> None:
    _, _, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    assert await usecases.update_sku(world.deps, sku_id, {"on_sale": False}) == 2
    assert world.store.skus_[sku_id]["on_sale"] is False
    assert [(e["revision"], e["on_sale"]) for e in world.sku_events] == [(1, True), (2, False)]
    # Nothing on sale any more: the product leaves the tree, search and its page.
    assert world.store.products_[product_id]["listed"] is False
    assert (await usecases.tree(world.deps)).scenarios[0].categories[0].products == []
    found = await usecases.search_products(world.deps, Paging(), q="移动", category_id=None, scenario_id=None)
    assert found.total == 0
    with pytest.raises(Problem) as exc:
        await usecases.product_detail(world.deps, product_id, None)
    assert exc.value.status_code == 404
    admin = await usecases.admin_product(world.deps, product_id)
    assert admin.listed is False and [(s.sku_id, s.on_sale, s.revision) for s in admin.skus] == [(sku_id, False, 2)]


async def test_a_patch_breaking_a_rule_changes_nothing(world: World) -> None:
    _, _, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    before = copy.deepcopy(world.store.skus_[sku_id])
    for changes in ({"prices": {"retail": 9000, "vip": 9500}}, {"face_value_cents": 1.5}, {"revision": 7}):
        with pytest.raises(Problem) as exc:
            await usecases.update_sku(world.deps, sku_id, changes)
        assert exc.value.status_code == 422
    assert world.store.skus_[sku_id] == before and len(world.sku_events) == 1


async def test_a_concurrent_sku_edit_is_a_conflict(world: World) -> None:
    _, _, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())

    def other_admin(changed: str) -> None:
        world.store.skus_[changed]["revision"] += 1

    world.store.before_sku_update = other_admin
    with pytest.raises(Problem) as exc:
        await usecases.update_sku(world.deps, sku_id, {"on_sale": False})
    assert exc.value.status_code == 409
    assert world.store.skus_[sku_id]["on_sale"] is True and len(world.sku_events) == 1


async def test_renaming_a_product_or_category_re_announces_its_skus(world: World) -> None:
    _, category_id, product_id = await a_product(world)
    sku_id = await usecases.create_sku(world.deps, product_id, sku_in())
    await usecases.update_product(world.deps, product_id, {"description": "全国通用"})
    assert len(world.sku_events) == 1  # neither name nor place changed
    await usecases.update_product(world.deps, product_id, {"name": "移动话费(新)"})
    await usecases.update_category(world.deps, category_id, {"name": "手机话费"})
    assert [(e["sku_id"], e["revision"]) for e in world.sku_events] == [(sku_id, 1), (sku_id, 2), (sku_id, 3)]
    assert world.sku_events[1]["product_name"] == "移动话费(新)"
    assert world.sku_events[2]["category_name"] == "手机话费"


async def test_product_changes_and_listing_flips_are_announced_with_their_service_notes(world: World) -> None:
    _, category_id, product_id = await a_product(world)
    created = world.product_events
    assert [(e["product_id"], e["revision"], e["listed"]) for e in created] == [(product_id, 1, False)]
    assert created[0]["service_notes"] == "自动发货" and created[0]["category_id"] == category_id

    first = await usecases.create_sku(world.deps, product_id, sku_in())  # first on-sale SKU: listed
    second = await usecases.create_sku(world.deps, product_id, sku_in(name="50 元", face_value_cents=5000))
    await usecases.update_product(world.deps, product_id, {"service_notes": "到账后 10 分钟内可查"})
    await usecases.update_sku(world.deps, first, {"on_sale": False})  # one still on sale: no change
    await usecases.update_sku(world.deps, second, {"on_sale": False})  # the last one: unlisted
    events = world.product_events
    assert [(e["revision"], e["listed"]) for e in events] == [(1, False), (2, True), (3, True), (4, False)]
    assert events[2]["service_notes"] == events[3]["service_notes"] == "到账后 10 分钟内可查"
    assert all("prices" not in e for e in events)
    assert world.store.products_[product_id]["revision"] == 4


async def test_a_failed_product_edit_announces_nothing(world: World) -> None:
    _, _, product_id = await a_product(world)
    with pytest.raises(Problem):
        await usecases.update_product(world.deps, product_id, {"category_id": "nope"})
    with pytest.raises(Problem):
        await usecases.update_product(world.deps, "nope", {"service_notes": "x"})
    assert len(world.product_events) == 1 and world.store.products_[product_id]["revision"] == 1


# -- unknown ids ----------------------------------------------------------------------------------


async def test_unknown_ids_are_not_found(world: World) -> None:
    await a_product(world)
    calls: list[Awaitable[Any]] = [
        usecases.product_detail(world.deps, "nope", None),
        usecases.admin_product(world.deps, "nope"),
        usecases.admin_sku(world.deps, "nope"),
        usecases.create_sku(world.deps, "nope", sku_in()),
        usecases.update_sku(world.deps, "nope", {"on_sale": False}),
        usecases.update_product(world.deps, "nope", {"name": "x"}),
        usecases.update_category(world.deps, "nope", {"name": "x"}),
        usecases.rename_scenario(world.deps, "nope", ScenarioIn("x")),
    ]
    for call in calls:
        with pytest.raises(Problem) as exc:
            await call
        assert exc.value.status_code == 404
    assert world.store.skus_ == {} and world.sku_events == []


async def test_a_reference_to_an_unknown_parent_is_a_validation_problem(world: World) -> None:
    _, category_id, product_id = await a_product(world)
    with pytest.raises(Problem) as exc:
        await usecases.create_category(world.deps, CategoryIn("nope", "x"))
    assert problem(exc) == (422, ["scenario_id"])
    with pytest.raises(Problem) as exc:
        await usecases.create_product(world.deps, ProductIn(category_id="nope", name="x"))
    assert problem(exc) == (422, ["category_id"])
    with pytest.raises(Problem) as exc:
        await usecases.update_product(world.deps, product_id, {"category_id": "nope"})
    assert problem(exc) == (422, ["category_id"])
    assert world.store.products_[product_id]["category_id"] == category_id
    assert len(world.store.categories_) == 1 and len(world.store.products_) == 1


# -- browsing -------------------------------------------------------------------------------------


async def test_tree_and_search_show_listed_products_by_name_and_page(world: World) -> None:
    scenario_id, category_id, mobile = await a_product(world)
    await usecases.create_sku(world.deps, mobile, sku_in())
    games = await usecases.create_category(world.deps, CategoryIn(scenario_id, "游戏点卡"))
    ids = []
    for i in range(3):
        pid = await usecases.create_product(world.deps, ProductIn(category_id=games, name=f"网易一卡通 {i}"))
        await usecases.create_sku(world.deps, pid, sku_in(name=f"{i + 1}0 元"))
        ids.append(pid)
    await usecases.create_product(world.deps, ProductIn(category_id=games, name="没有 SKU 的商品"))

    (scenario,) = (await usecases.tree(world.deps)).scenarios
    assert [(c.name, [p.name for p in c.products]) for c in scenario.categories] == [
        ("游戏点卡", ["网易一卡通 0", "网易一卡通 1", "网易一卡通 2"]),
        ("话费充值", ["中国移动话费"]),
    ]
    first = await usecases.search_products(world.deps, Paging(1, 2), q=None, category_id=games, scenario_id=None)
    second = await usecases.search_products(world.deps, Paging(2, 2), q=None, category_id=games, scenario_id=None)
    assert (first.page, first.page_size, first.total, second.total) == (1, 2, 3, 3)
    assert [p.product_id for p in first.items + second.items] == ids
    in_scenario = await usecases.search_products(
        world.deps, Paging(), q=None, category_id=None, scenario_id=scenario_id
    )
    assert in_scenario.total == 4
    # A category wins over a scenario; a SKU's name finds its product.
    by_sku = await usecases.search_products(
        world.deps, Paging(), q="100 元", category_id=category_id, scenario_id="elsewhere"
    )
    assert [p.product_id for p in by_sku.items] == [mobile]
