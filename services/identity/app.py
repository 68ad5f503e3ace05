"""Wiring of the identity service: its HTTP API, event handlers, indexes and deps over the shared
runtime."""

from __future__ import annotations

from litestar import Litestar

from services.identity.api import CONTROLLERS
from services.identity.applications_store import APPLICATION_INDEXES
from services.identity.deps import build, deps_from
from services.identity.documents_store import DOCUMENT_INDEXES
from services.identity.handlers import router
from services.identity.settings import IdentitySettings
from services.identity.store import INDEXES
from services.identity.usecases.admin import bootstrap_admin
from services.identity.usecases.delivery import deliver_codes
from services.identity.usecases.documents import purge_documents
from shared.runtime import Runtime
from shared.service import ServiceSpec, create_service_app


async def ensure_admin(rt: Runtime) -> None:
    await bootstrap_admin(deps_from(rt))


def create_app(settings: IdentitySettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="identity",
            settings=settings or IdentitySettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=[*INDEXES, *APPLICATION_INDEXES, *DOCUMENT_INDEXES],
            deps=build,
            on_ready=[ensure_admin],
            background=[deliver_codes, purge_documents],
        )
    )
