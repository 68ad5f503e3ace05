"""Wiring of the assistant service: its HTTP API, event handlers, indexes, deps and the follower
of the store (-> each replica's in-memory index)."""

from __future__ import annotations

from litestar import Litestar

from services.assistant.api import CONTROLLERS
from services.assistant.deps import build
from services.assistant.handlers import router
from services.assistant.loops import follow_store
from services.assistant.settings import AssistantSettings
from services.assistant.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: AssistantSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="assistant",
            settings=settings or AssistantSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=INDEXES,
            deps=build,
            background=[follow_store],
        )
    )
