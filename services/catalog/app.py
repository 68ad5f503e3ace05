"""Wiring of the catalog service: its HTTP API, event handlers, indexes and deps over the shared runtime."""

from __future__ import annotations

from litestar import Litestar

from services.catalog.api import CONTROLLERS
from services.catalog.deps import build
from services.catalog.handlers import router
from services.catalog.settings import CatalogSettings
from services.catalog.sites_store import SITE_INDEXES
from services.catalog.store import INDEXES
from shared.service import ServiceSpec, create_service_app


def create_app(settings: CatalogSettings | None = None) -> Litestar:
    return create_service_app(
        ServiceSpec(
            name="catalog",
            settings=settings or CatalogSettings(),
            controllers=CONTROLLERS,
            events=router,
            indexes=[*INDEXES, *SITE_INDEXES],
            deps=build,
        )
    )
