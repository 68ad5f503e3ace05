"""Wiring of the identity service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.identity.api import CONTROLLERS
from services.identity.bootstrap import ensure_admin
from services.identity.handlers import router
from services.identity.settings import IdentitySettings
from services.identity.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: IdentitySettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="identity",
            settings=settings or IdentitySettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            on_ready=[ensure_admin],
        )
    )
