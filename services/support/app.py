"""Wiring of the support service: its HTTP API, event handlers, indexes, its one `SupportDeps`
and four supervised background loops (emails, webhook deliveries, the evidence sweep,
partner feed replays)."""

from __future__ import annotations

from litestar import Litestar

from services.support.api import CONTROLLERS
from services.support.deps import build, deps_of
from services.support.handlers import router
from services.support.settings import SupportSettings
from services.support.store import INDEXES
from services.support.usecases import feed, notifications, tickets, webhooks
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


async def mailer(rt: Runtime) -> None:
    await notifications.send_emails_forever(deps_of(rt))


async def webhook_dispatcher(rt: Runtime) -> None:
    await webhooks.dispatch_forever(deps_of(rt))


async def feed_replayer(rt: Runtime) -> None:
    await feed.replay_forever(deps_of(rt))


async def evidence_sweep(rt: Runtime) -> None:
    await tickets.sweep_evidence_forever(deps_of(rt))


def create_app(settings: SupportSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="support",
            settings=settings or SupportSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            deps=build,
            background=[mailer, webhook_dispatcher, evidence_sweep, feed_replayer],
        )
    )
