"""Wiring of the wallet service: its HTTP API, event handlers and indexes over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.wallet.api import CONTROLLERS
from services.wallet.handlers import router
from services.wallet.settings import WalletSettings
from services.wallet.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: WalletSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="wallet",
            settings=settings or WalletSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
        )
    )
