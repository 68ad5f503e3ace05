"""Wiring of the order service: its HTTP API, event handlers, background upkeep and indexes."""

from __future__ import annotations

from litestar import Litestar

from services.order.api import CONTROLLERS
from services.order.handlers import router
from services.order.placing import SkuCache
from services.order.saga import OrderDeps
from services.order.settings import OrderSettings
from services.order.store import INDEXES
from services.order.upkeep import expire_unpaid, listen_for_status, rebuild_missing_holds
from services.order.watch import StatusWatch
from shared.inventory import Inventory
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


def create_app(settings: OrderSettings | None = None) -> Litestar:
    settings = settings or OrderSettings()

    def wire(rt: Runtime) -> None:
        rt.put(
            OrderDeps(
                settings=settings,
                inventory=Inventory(rt.redis),
                watch=StatusWatch(rt.redis),
                skus=SkuCache(settings.sku_cache_seconds),
            )
        )

    return create_service_app(
        ServiceSpec(
            name="order",
            settings=settings,
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            components=[wire],
            on_ready=[rebuild_missing_holds],
            background=[listen_for_status, expire_unpaid],
        )
    )
