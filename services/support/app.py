"""Wiring of the support service: its HTTP API, event handlers, indexes and the two background
senders (emails, webhook deliveries) and the evidence sweep over the shared runtime."""

from __future__ import annotations

import asyncio
from typing import cast

from litestar import Litestar

from services.support import janitor
from services.support.api import CONTROLLERS
from services.support.handlers import router
from services.support.mailer import Mailer
from services.support.settings import SupportSettings
from services.support.store import INDEXES
from services.support.webhooks import WebhookDispatcher
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


async def start_senders(rt: Runtime) -> None:
    settings = cast(SupportSettings, rt.settings)
    rt.tasks.append(asyncio.create_task(Mailer(rt.mongo, settings).run(), name="support-mailer"))
    rt.tasks.append(asyncio.create_task(WebhookDispatcher(rt.mongo, settings).run(), name="support-webhooks"))
    rt.tasks.append(asyncio.create_task(janitor.run(rt.mongo), name="support-evidence-sweep"))


def create_app(settings: SupportSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="support",
            settings=settings or SupportSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            on_ready=[start_senders],
        )
    )
