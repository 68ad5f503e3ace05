"""Wiring of the fulfilment service: the card-key vault, deliveries (auto, direct, manual), its
event handlers, background dispatch and indexes over the shared runtime."""

from __future__ import annotations

from functools import partial

import httpx
from litestar import Litestar

from services.fulfilment import auto, delivery_handlers, reissue
from services.fulfilment.api import CONTROLLERS, vault_for
from services.fulfilment.deliveries import DELIVERY_INDEXES
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.direct import SupplierCallbackController, dispatch_forever
from services.fulfilment.handlers import router
from services.fulfilment.manual import ManualTaskController
from services.fulfilment.reveal import REVEALS, CardKeysController
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.stock import on_ready
from services.fulfilment.store import INDEXES
from services.fulfilment.suppliers import HttpSupplier
from shared.inventory import Inventory
from shared.messaging.consumer import EventRouter
from shared.mongo import Index
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


def create_app(settings: FulfilmentSettings | None = None) -> Litestar:
    settings = settings or FulfilmentSettings()
    vault = vault_for(settings)  # a bad KAMENG_VAULT_KEYS stops the process at start, not at the first import
    events = EventRouter("fulfilment")
    for part in (router, delivery_handlers.router, auto.router, reissue.router):
        events.include(part)

    def wire(rt: Runtime) -> None:
        inventory = Inventory(rt.redis)
        rt.put(inventory)
        supplier = HttpSupplier(
            settings.supplier_url, settings.supplier_secret.get_secret_value(), httpx.AsyncClient(timeout=10)
        )
        rt.put(
            FulfilmentDeps(
                settings=settings,
                supplier=supplier,
                seal=vault.seal_document,
                deliver_auto=partial(auto.deliver_auto, inventory=inventory),
            )
        )

    return create_service_app(
        ServiceSpec(
            name="fulfilment",
            settings=settings,
            controllers=[*CONTROLLERS, ManualTaskController, SupplierCallbackController, CardKeysController],
            events=events,
            indexes=[*INDEXES, *DELIVERY_INDEXES, Index(REVEALS, [("order_id", 1), ("at", -1)])],
            components=[wire],
            on_ready=[on_ready],
            background=[dispatch_forever],
        )
    )
