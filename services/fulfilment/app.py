"""Wiring of the fulfilment service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.fulfilment.api import CONTROLLERS, vault_for
from services.fulfilment.handlers import router, use_inventory
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.stock import on_ready
from services.fulfilment.store import INDEXES
from shared.inventory import Inventory
from shared.service import ServiceSpec, create_service_app


def create_app(settings: FulfilmentSettings | None = None) -> Litestar:
    settings = settings or FulfilmentSettings()
    vault_for(settings)  # a bad KAMENG_VAULT_KEYS stops the process at start, not at the first import
    app = create_service_app(
        ServiceSpec(
            name="fulfilment",
            settings=settings,
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            on_ready=[on_ready],
        )
    )
    use_inventory(Inventory(app.state.runtime.redis))
    return app
