"""Wiring of the order service: its HTTP API, event handlers, dependencies, background upkeep
and indexes."""

from __future__ import annotations

from litestar import Litestar

from services.order.api import CONTROLLERS
from services.order.deps import build
from services.order.handlers import router
from services.order.settings import OrderSettings
from services.order.sites_store import SITE_INDEXES
from services.order.store import INDEXES
from services.order.usecases.subscriptions import schedule_forever
from services.order.usecases.upkeep import (
    expire_unpaid,
    keep_held_epoch,
    listen_for_status,
    rebuild_missing_holds,
)
from shared.service import ServiceSpec, create_service_app
from shared.strict_bodies import document_bounds


def create_app(settings: OrderSettings | None = None) -> Litestar:
    settings = settings or OrderSettings()
    app = create_service_app(
        ServiceSpec(
            name="order",
            settings=settings,
            controllers=CONTROLLERS,
            events=router,
            indexes=[*INDEXES, *SITE_INDEXES],
            deps=build,
            on_ready=[rebuild_missing_holds],
            background=[listen_for_status, expire_unpaid, keep_held_epoch, schedule_forever],
        )
    )
    for struct in ("OrderRequest", "SubscriptionIn"):
        document_bounds(app, struct, "quantity", minimum=1, maximum=settings.max_quantity_per_order)
    return app
