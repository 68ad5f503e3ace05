"""Wiring of the fulfilment service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.fulfilment.api import CONTROLLERS
from services.fulfilment.handlers import router
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: FulfilmentSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="fulfilment",
            settings=settings or FulfilmentSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
        )
    )
