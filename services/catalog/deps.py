"""The catalog's one typed set of dependencies, built once at start-up (`ServiceSpec(deps=build)`).

Controllers receive it as `deps: CatalogDeps` (Litestar DI), event handlers through `deps_of(ctx)`.
Use-case unit tests build one from in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.catalog.cache import BrowseCache
from services.catalog.settings import CatalogSettings
from services.catalog.store import CatalogStore
from shared.inventory import Inventory
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


@dataclass(frozen=True)
class CatalogDeps:
    settings: CatalogSettings
    store: CatalogStore
    inventory: Inventory
    """Read only here: the sellable units behind a card-key SKU's stock state."""
    uow: UnitOfWork
    """Transactions whose events go out through the outbox."""
    browse: BrowseCache
    """What every visitor reads, in memory, emptied by every catalog change (cache.py)."""


def build(rt: Runtime) -> CatalogDeps:
    settings = rt.settings
    assert isinstance(settings, CatalogSettings)
    browse = BrowseCache(
        rt.redis,
        check_seconds=settings.catalog_cache_check_seconds,
        max_age_seconds=settings.catalog_cache_max_age_seconds,
    )
    return CatalogDeps(
        settings=settings, store=CatalogStore(rt.mongo.db), inventory=Inventory(rt.redis), uow=rt.uow, browse=browse
    )


def deps_of(ctx: HandlerContext) -> CatalogDeps:
    deps = ctx.deps
    assert isinstance(deps, CatalogDeps)
    return deps
