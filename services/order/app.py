"""Wiring of the order service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.order.api import CONTROLLERS
from services.order.handlers import router
from services.order.settings import OrderSettings
from services.order.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: OrderSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="order",
            settings=settings or OrderSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
        )
    )
