"""The fulfilment service's one typed `Deps`, built once at start-up (`ServiceSpec(deps=build)`):
controllers get it as `deps: FulfilmentDeps`, event handlers through `deps_of(ctx)`, background
loops as `rt.deps`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import httpx

from services.fulfilment.crypto import Vault
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import FulfilmentStore
from services.fulfilment.suppliers import HttpSupplier, Supplier
from shared.inventory import Inventory
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


@dataclass
class FulfilmentDeps:
    settings: FulfilmentSettings
    store: FulfilmentStore
    uow: UnitOfWork
    """Transactions of the use cases that start their own (HTTP requests, the direct dispatcher)."""
    inventory: Inventory
    """The Redis stock counters: the vault keeps `supply`, the order service `held`."""
    supplier: Supplier
    """Where direct top-ups go."""
    vault: Vault
    """Encrypts card keys and delivered content; fingerprints keys. Codes never leave it logged."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a direct top-up is waiting, so the dispatcher does not wait for its next round."""


def vault_of(settings: FulfilmentSettings) -> Vault:
    """Raises `VaultConfigError` on a bad KAMENG_VAULT_KEYS: the process stops at start."""
    fingerprint_key = settings.vault_fingerprint_key.get_secret_value() if settings.vault_fingerprint_key else None
    return Vault.from_config(settings.vault_keys.get_secret_value(), fingerprint_key)


def build(rt: Runtime) -> FulfilmentDeps:
    settings = cast(FulfilmentSettings, rt.settings)
    return FulfilmentDeps(
        settings=settings,
        store=FulfilmentStore(rt.mongo.db),
        uow=rt.uow,
        inventory=Inventory(rt.redis),
        supplier=HttpSupplier(
            settings.supplier_url, settings.supplier_secret.get_secret_value(), httpx.AsyncClient(timeout=10)
        ),
        vault=vault_of(settings),
    )


def deps_of(ctx: HandlerContext) -> FulfilmentDeps:
    return cast(FulfilmentDeps, ctx.deps)
