"""Wiring of the wallet service: its HTTP API, event handlers and indexes over the shared runtime,
the payment provider client, and the background poll for top-ups whose notification is late."""

from __future__ import annotations

import asyncio

from litestar import Litestar

from services.wallet.api import CONTROLLERS
from services.wallet.handlers import router
from services.wallet.provider import PaymentProvider
from services.wallet.settings import WalletSettings
from services.wallet.store import INDEXES
from services.wallet.topups import poll_forever
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


def create_app(settings: WalletSettings | None = None) -> Litestar:
    settings = settings or WalletSettings()
    provider = PaymentProvider(settings)

    async def start_polling(rt: Runtime) -> None:
        rt.tasks.append(asyncio.create_task(poll_forever(rt, provider), name="wallet-topup-poll"))

    app = create_service_app(
        ServiceSpec(
            name="wallet",
            settings=settings,
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            on_ready=[start_polling],
        )
    )
    app.state.provider = provider
    return app
