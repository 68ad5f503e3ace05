"""Wiring of the support service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.support.api import CONTROLLERS
from services.support.handlers import router
from services.support.settings import SupportSettings
from services.support.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: SupportSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="support",
            settings=settings or SupportSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
        )
    )
