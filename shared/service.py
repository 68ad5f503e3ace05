"""The one shape every backend service has: a Litestar app (its internal HTTP API) and its
FastStream subscribers and outbox relay in the same process, over one Runtime.

    spec = ServiceSpec(name="wallet", settings=WalletSettings(), controllers=[...],
                       events=router, indexes=[...], on_ready=[...])
    app = create_service_app(spec)       # services/wallet/app.py
    serve(app, spec.settings)            # services/wallet/__main__.py

Start-up never blocks on infrastructure: the HTTP server comes up at once (so /health/ready can
say what is missing), and a bootstrap task keeps trying to create indexes and topics, start the
consumers and the relay, then runs the service's `on_ready` hooks.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import uvicorn
from litestar import Litestar, Request
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from shared import (
    contracts,  # noqa: F401  (registers every event model)
    redis_client,
)
from shared.auth import Caller, caller_from, unauthorized
from shared.canary import canary_controller, canary_router
from shared.config import ServiceSettings
from shared.contracts import topics
from shared.http import create_http_app, health_controller
from shared.messaging.broker import create_broker, ensure_topics
from shared.messaging.consumer import EventRouter
from shared.messaging.inbox import INBOX_INDEXES
from shared.messaging.outbox import OUTBOX_INDEXES, UnitOfWork
from shared.messaging.relay import OutboxRelay
from shared.mongo import Index, connect, ensure_indexes
from shared.runtime import Runtime
from shared.telemetry import Telemetry, setup_logging, setup_telemetry

log = logging.getLogger(__name__)


Hook = Callable[[Runtime], Awaitable[None]]


@dataclass
class ServiceSpec:
    name: str
    settings: ServiceSettings
    controllers: Sequence[Any] = ()
    events: EventRouter | None = None
    indexes: Sequence[Index] = ()
    on_ready: Sequence[Hook] = ()
    """Run once infrastructure is up (e.g. create the bootstrap admin); retried until it succeeds."""
    components: Sequence[Callable[[Runtime], None]] = ()
    """Called once the runtime exists, to `rt.put(...)` the service's own long-lived objects."""
    background: Sequence[Hook] = ()
    """Long-running loops started once the service is ready (expiry sweeps, pollers); each must
    catch its own errors and keep going; they are cancelled at shutdown."""
    description: str = ""
    """Shown in the OpenAPI document; defaults to the service package's docstring."""


def create_runtime(spec: ServiceSpec, telemetry: Telemetry) -> Runtime:
    settings = spec.settings
    mongo = connect(
        settings.mongodb_url,
        settings.database_name,
        timeout_ms=settings.mongodb_timeout_ms,
        app_name=settings.service_name,
    )
    broker = create_broker(settings, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    relay = OutboxRelay(mongo, broker, settings)
    uow = UnitOfWork(mongo, producer=settings.service_name, on_commit=relay.wake)
    rt = Runtime(
        settings=settings,
        mongo=mongo,
        redis=redis_client.connect(settings.redis_url),
        broker=broker,
        uow=uow,
        relay=relay,
        telemetry=telemetry,
    )
    for wire in spec.components:
        wire(rt)
    events = EventRouter(settings.service_name)
    events.include(canary_router(settings.service_name))
    if spec.events is not None:
        events.include(spec.events)
    events.subscribe(broker, uow, settings, rt)
    return rt


async def _bootstrap(spec: ServiceSpec, rt: Runtime) -> None:
    """Bring the service's infrastructure side up, retrying until everything answers."""
    delay = 0.2
    indexes = [*OUTBOX_INDEXES, *INBOX_INDEXES, *spec.indexes]
    steps_done: set[str] = set()
    while True:
        try:
            if "mongo" not in steps_done:
                await ensure_indexes(rt.mongo.db, indexes)
                steps_done.add("mongo")
            if "topics" not in steps_done:
                await ensure_topics(
                    rt.settings.kafka_bootstrap_servers,
                    topics.all_with_dlq(),
                    partitions=rt.settings.kafka_topic_partitions,
                    replication_factor=rt.settings.kafka_replication_factor,
                )
                steps_done.add("topics")
            if "broker" not in steps_done:
                await rt.broker.start()
                steps_done.add("broker")
            if "relay" not in steps_done:
                rt.tasks.append(asyncio.create_task(rt.relay.run(), name=f"{spec.name}-outbox-relay"))
                steps_done.add("relay")
            for i, hook in enumerate(spec.on_ready):
                if f"hook{i}" not in steps_done:
                    await hook(rt)
                    steps_done.add(f"hook{i}")
            for loop in spec.background:
                rt.tasks.append(asyncio.create_task(_keep_running(loop, rt), name=f"{spec.name}-{loop.__name__}"))
            rt.started.set()
            log.info("%s is ready", spec.name)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "%s waiting for infrastructure (%s): %s",
                spec.name,
                ", ".join(sorted(steps_done)) or "nothing up yet",
                exc,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _keep_running(loop: Hook, rt: Runtime) -> None:
    """Restart a background loop that crashed, after a pause, instead of losing it silently."""
    while True:
        try:
            await loop(rt)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed; restarting in 2 s", loop.__name__)
            await asyncio.sleep(2)


def create_service_app(spec: ServiceSpec, *, telemetry: Telemetry | None = None) -> Litestar:
    settings = spec.settings
    setup_logging(settings.service_name, settings.log_level)
    telemetry = telemetry or setup_telemetry(settings.service_name)
    rt = create_runtime(spec, telemetry)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        boot = asyncio.create_task(_bootstrap(spec, rt), name=f"{spec.name}-bootstrap")
        try:
            yield
        finally:
            boot.cancel()
            for task in rt.tasks:
                task.cancel()
            for task in [boot, *rt.tasks]:
                with suppress(asyncio.CancelledError, Exception):
                    await task
            with suppress(Exception):
                await rt.relay.release()
            with suppress(Exception):
                await rt.broker.stop()
            with suppress(Exception):
                await rt.redis.aclose()
            rt.mongo.close()

    def provide_runtime() -> Runtime:
        return rt

    secret = settings.jwt_secret.get_secret_value()

    def provide_caller(request: Request[Any, Any, Any]) -> Caller:
        caller = caller_from(request, secret)
        if caller is None:
            raise unauthorized("sign in first: send Authorization: Bearer <access token>")
        return caller

    def provide_viewer(request: Request[Any, Any, Any]) -> Caller | None:
        return caller_from(request, secret)

    app = create_http_app(
        telemetry=telemetry,
        openapi=OpenAPIConfig(
            title=f"Kameng {spec.name} (internal)",
            version="0.1.0",
            description=spec.description or _package_doc(spec.name),
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
        ),
        max_body_bytes=settings.request_max_body_bytes,
        route_handlers=[health_controller(rt.readiness_checks), canary_controller(), *spec.controllers],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
            "viewer": Provide(provide_viewer, sync_to_thread=False),
        },
        lifespan=[lifespan],
    )
    app.state.runtime = rt
    app.state.jwt_secret = secret
    return app


def _package_doc(name: str) -> str:
    package = sys.modules.get(f"services.{name}")
    return " ".join((package.__doc__ or "").split()) if package else ""


def serve(app: Litestar, settings: ServiceSettings) -> None:
    """Run one service process (uvicorn, no reload, our logging)."""
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=15,
        # Longer than the clients' pooled-connection expiry (httpx: 5 s), so a client never sends
        # on a connection the server is closing (a ReadError for a request that never arrived).
        timeout_keep_alive=30,
    )
