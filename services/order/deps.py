"""The order service's dependencies, built once at start-up (`ServiceSpec(deps=build)`).

Controllers receive them as `deps: OrderDeps` (Litestar DI), event handlers through
`deps_of(ctx)`, background loops as `rt.deps`. Use cases take them as a plain argument, so their
unit tests hand in fakes of the store, the inventory, the status channel and the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.order.settings import OrderSettings
from services.order.store import OrderStore, SkuCache
from services.order.watch import StatusWatch
from shared.inventory import Inventory
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


@dataclass
class OrderDeps:
    settings: OrderSettings
    store: OrderStore
    uow: UnitOfWork
    inventory: Inventory
    """Stock holds in Redis (`shared/inventory.py`)."""
    watch: StatusWatch
    """Wakes a waiting POST /orders when its order's payment is answered."""
    skus: SkuCache
    eta_cache: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    """SKU id -> (until when, observed p90 of its deliveries): read once per SKU_CACHE_SECONDS."""


def build(rt: Runtime) -> OrderDeps:
    settings = rt.settings
    assert isinstance(settings, OrderSettings), "the order service runs with OrderSettings"
    store = OrderStore(rt.mongo.db)
    return OrderDeps(
        settings=settings,
        store=store,
        uow=rt.uow,
        inventory=Inventory(rt.redis),
        watch=StatusWatch(rt.redis),
        skus=SkuCache(store.sku, settings.sku_cache_seconds),
    )


def deps_of(ctx: HandlerContext) -> OrderDeps:
    deps = ctx.deps
    assert isinstance(deps, OrderDeps), "order handlers run inside the order service"
    return deps
