"""The one shape every backend service has: a Litestar app (its internal HTTP API) and its
FastStream subscribers and outbox relay in the same process, over one Runtime.

    spec = ServiceSpec(name="wallet", settings=WalletSettings(), controllers=[...],
                       events=router, indexes=[...], deps=WalletDeps.build,
                       on_ready=[...], background=[poll_topups])
    app = create_service_app(spec)       # services/wallet/app.py
    serve(app, spec.settings)            # services/wallet/__main__.py

Dependencies reach code one way: `deps` builds the service's typed `Deps` once, when the runtime
exists; Litestar injects it into controllers as `deps: WalletDeps`, event handlers read
`ctx.deps`, background loops `rt.deps`. Nothing is built per request, nothing kept in a module
global. Background loops run only through `background=`: supervised, restarted with backoff
after a crash, and shown in `/health/ready` under `background`.

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
from litestar.openapi.plugins import JsonRenderPlugin

from shared import (
    contracts,  # noqa: F401  (registers every event model)
    redis_client,
)
from shared.auth import Caller, VerifiedTokens, caller_from, unauthorized
from shared.canary import canary_controller, canary_router
from shared.config import ServiceSettings
from shared.contracts import topics
from shared.http import create_http_app, health_controller
from shared.idempotency import INDEXES as IDEMPOTENCY_INDEXES
from shared.messaging.broker import create_broker, ensure_topics
from shared.messaging.consumer import EventRouter, consumer_group
from shared.messaging.inbox import INBOX_INDEXES
from shared.messaging.outbox import OUTBOX_INDEXES, UnitOfWork
from shared.messaging.relay import OutboxRelay
from shared.metrics import metrics_controller, platform_loops
from shared.mongo import Index, connect, ensure_indexes
from shared.paging import provide_paging
from shared.runtime import LoopState, Runtime
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
    deps: Callable[[Runtime], Any] | None = None
    """Builds the service's one typed `Deps` (settings, stores, clients) once the runtime exists.
    Injected into controllers as `deps`, into event handlers as `ctx.deps`, loops get `rt.deps`."""
    background: Sequence[Hook] = ()
    """Long-running loops started once the service is ready (expiry sweeps, pollers). Supervised:
    a loop that raises is restarted with backoff and its state shows in `/health/ready`; they are
    cancelled at shutdown."""
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
    if spec.deps is not None:
        rt.deps = spec.deps(rt)
    _event_router(spec).subscribe(broker, uow, settings, rt)
    return rt


def _event_router(spec: ServiceSpec) -> EventRouter:
    events = EventRouter(spec.settings.service_name)
    events.include(canary_router(spec.settings.service_name))
    if spec.events is not None:
        events.include(spec.events)
    return events


def _consumer_groups(spec: ServiceSpec) -> dict[str, str]:
    """{topic: consumer group} of every topic the service consumes (for its lag metric)."""
    return {t: consumer_group(spec.settings.service_name, t) for t in _event_router(spec).topics}


async def _bootstrap(spec: ServiceSpec, rt: Runtime) -> None:
    """Bring the service's infrastructure side up, retrying until everything answers."""
    delay = 0.2
    indexes = [*OUTBOX_INDEXES, *INBOX_INDEXES, *IDEMPOTENCY_INDEXES, *spec.indexes]
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
            for loop in [*spec.background, *platform_loops(_consumer_groups(spec))]:
                state = rt.loops.setdefault(loop.__name__, LoopState())
                rt.tasks.append(
                    asyncio.create_task(_keep_running(loop, rt, state), name=f"{spec.name}-{loop.__name__}")
                )
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


async def _keep_running(loop: Hook, rt: Runtime, state: LoopState) -> None:
    """Restart a background loop that crashed, after a pause growing from 1 s to 30 s (reset once
    it has run a minute without crashing), instead of losing it silently."""
    delay = 1.0
    while True:
        started = asyncio.get_running_loop().time()
        state.status = "running"
        try:
            await loop(rt)
            state.status = "finished"
            return
        except asyncio.CancelledError:
            state.status = "stopped"
            raise
        except Exception as exc:
            if asyncio.get_running_loop().time() - started > 60:
                delay = 1.0
            state.restarts += 1
            state.status = "restarting"
            state.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("background task %s crashed; restarting in %.0f s", loop.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


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
            # A Deps that holds clients of its own (HTTP adapters) closes them here.
            aclose = getattr(rt.deps, "aclose", None)
            if aclose is not None:
                with suppress(Exception):
                    await aclose()
            with suppress(Exception):
                await rt.relay.release()
            with suppress(Exception):
                await rt.broker.stop()
            with suppress(Exception):
                await rt.redis.aclose()
            rt.mongo.close()

    def provide_runtime() -> Runtime:
        return rt

    def provide_deps() -> Any:
        return rt.deps

    secret = settings.jwt_secret.get_secret_value()
    tokens = VerifiedTokens(secret)

    def provide_caller(request: Request[Any, Any, Any]) -> Caller:
        caller = caller_from(request, tokens)
        if caller is None:
            raise unauthorized("sign in first: send Authorization: Bearer <access token>")
        return caller

    def provide_viewer(request: Request[Any, Any, Any]) -> Caller | None:
        return caller_from(request, tokens)

    app = create_http_app(
        telemetry=telemetry,
        openapi=OpenAPIConfig(
            title=f"Kameng {spec.name} (internal)",
            version="0.1.0",
            description=spec.description or _package_doc(spec.name),
            path="/schema",
            # JSON only: the interactive page is the gateway's (`/api/docs`, vendored assets).
            render_plugins=[JsonRenderPlugin()],
        ),
        max_body_bytes=settings.request_max_body_bytes,
        service=spec.name,
        route_handlers=[
            health_controller(rt.readiness_checks, rt.health_details),
            metrics_controller(),
            canary_controller(),
            *spec.controllers,
        ],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "deps": Provide(provide_deps, sync_to_thread=False),
            "paging": Provide(provide_paging, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
            "viewer": Provide(provide_viewer, sync_to_thread=False),
        },
        lifespan=[lifespan],
    )
    app.state.runtime = rt
    app.state.jwt_secret = secret
    app.state.tokens = tokens
    return app


def _package_doc(name: str) -> str:
    package = sys.modules.get(f"services.{name}")
    return " ".join((package.__doc__ or "").split()) if package else ""


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How every Kameng process is served (also the benchmarks' bare baseline, so a ratio
    compares like with like): uvloop's event loop and the httptools parser (Decision 24), our
    logging, no access log."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 15,
        # Longer than the clients' pooled-connection expiry (httpx: 5 s), so a client never sends
        # on a connection the server is closing (a ReadError for a request that never arrived).
        "timeout_keep_alive": 30,
    }


def serve(app: Litestar, settings: ServiceSettings) -> None:
    """Run one service process (uvicorn, no reload, our logging)."""
    uvicorn.run(app, **uvicorn_options(settings.host, settings.port))
