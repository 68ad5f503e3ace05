"""Wiring of the fulfilment service: the card-key vault, deliveries (auto, direct, manual), its
event handlers, background loops and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.fulfilment.api import CONTROLLERS
from services.fulfilment.deps import build
from services.fulfilment.handlers import router
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import INDEXES
from services.fulfilment.usecases.direct import dispatch_forever
from services.fulfilment.usecases.imports import run_import_jobs
from services.fulfilment.usecases.reminders import remind_forever
from services.fulfilment.usecases.stock import (
    keep_supply_epoch,
    rebuild_on_start,
    rebuild_periodically,
    sample_signals_forever,
)
from shared.service import ServiceSpec, create_service_app


def create_app(settings: FulfilmentSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="fulfilment",
            settings=settings or FulfilmentSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            deps=build,  # builds the vault too: a bad KAMENG_VAULT_KEYS stops the process at start
            on_ready=[rebuild_on_start],
            background=[
                dispatch_forever,
                rebuild_periodically,
                keep_supply_epoch,
                sample_signals_forever,
                run_import_jobs,
                remind_forever,
            ],
        )
    )
