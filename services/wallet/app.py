"""Wiring of the wallet service: its HTTP API, event handlers, indexes and `WalletDeps` over the
shared runtime, and the supervised background polls for top-ups and order payments whose
notification is late."""

from __future__ import annotations

from litestar import Litestar

from services.wallet.agents_store import AGENT_INDEXES
from services.wallet.api import CONTROLLERS
from services.wallet.deps import build
from services.wallet.handlers import router
from services.wallet.settings import WalletSettings
from services.wallet.store import INDEXES
from services.wallet.usecases.agents import release_commissions
from services.wallet.usecases.order_payments import poll_order_payments
from services.wallet.usecases.topups import poll_topups
from shared.service import ServiceSpec, create_service_app
from shared.strict_bodies import document_bounds


def create_app(settings: WalletSettings | None = None) -> Litestar:
    settings = settings or WalletSettings()
    app = create_service_app(
        ServiceSpec(
            name="wallet",
            settings=settings,
            controllers=CONTROLLERS,
            events=router,
            indexes=[*INDEXES, *AGENT_INDEXES],
            deps=build,
            background=[poll_topups, poll_order_payments, release_commissions],
        )
    )
    document_bounds(
        app, "TopupRequest", "amount_cents", minimum=settings.topup_min_cents, maximum=settings.topup_max_cents
    )
    return app
