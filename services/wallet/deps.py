"""The wallet's one typed `WalletDeps`, built once at start-up (`ServiceSpec(deps=build)`):
controllers receive it as `deps: WalletDeps`, event handlers through `deps_of(ctx)`, the top-up
poll through `rt.deps`."""

from __future__ import annotations

from dataclasses import dataclass

from services.wallet.agents_store import AgentStore
from services.wallet.provider import PaymentProvider
from services.wallet.settings import WalletSettings
from services.wallet.store import WalletStore
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


@dataclass(frozen=True)
class WalletDeps:
    settings: WalletSettings
    store: WalletStore
    provider: PaymentProvider
    uow: UnitOfWork
    """Runs a use case's writes in one transaction, with the events they emit (outbox)."""
    agents: AgentStore | None = None
    """Agents' commissions and withdrawals (`agents_store.py`); None: over `store`'s database."""


def build(rt: Runtime) -> WalletDeps:
    assert isinstance(rt.settings, WalletSettings)
    return WalletDeps(
        settings=rt.settings,
        store=WalletStore(rt.mongo.db),
        provider=PaymentProvider(rt.settings),
        uow=rt.uow,
        agents=AgentStore(rt.mongo.db),
    )


def deps_of(ctx: HandlerContext) -> WalletDeps:
    deps = ctx.deps
    assert isinstance(deps, WalletDeps), "the wallet's handlers run with its runtime"
    return deps


def deps_of_runtime(rt: Runtime) -> WalletDeps:
    assert isinstance(rt.deps, WalletDeps), "the wallet runtime is built with deps=build"
    return rt.deps
