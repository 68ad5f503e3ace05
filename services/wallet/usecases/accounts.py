"""Accounts: opened once per registered user (with the signup coupons), and what the buyer reads
of theirs: the overview, ledger pages and the spending report."""

from __future__ import annotations

from typing import Any

from services.wallet.deps import WalletDeps
from services.wallet.domain import months_back, spending_report
from services.wallet.store import WalletStore
from services.wallet.usecases.coupons import grant_on_signup
from shared.contracts.envelope import utcnow
from shared.contracts.wallet import AccountOpened
from shared.messaging.outbox import Tx
from shared.paging import Page, Paging

Doc = dict[str, Any]


async def open_account(tx: Tx, user_id: str, store: WalletStore | None = None) -> bool:
    """Open `user_id`'s account once, with one of every signup coupon; False when it exists."""
    store = store or WalletStore(tx.db)
    now = utcnow()
    if not await store.open_account(tx, user_id, now):
        return False
    tx.emit(AccountOpened(user_id=user_id))
    await grant_on_signup(store, tx, user_id, now)
    return True


async def overview(deps: WalletDeps, user_id: str) -> tuple[Doc | None, list[Doc]]:
    """The account (None while it is not open) and the user's coupons ([{grant, coupon}])."""
    return await deps.store.account(user_id), await deps.store.user_coupons(user_id)


async def ledger_page(deps: WalletDeps, user_id: str, paging: Paging) -> Page[Doc]:
    """The user's ledger entries, newest first."""
    items, total = await deps.store.ledger_page(user_id, paging.skip, paging.limit)
    return paging.of(items, total)


async def report(deps: WalletDeps, user_id: str, months: int) -> Doc:
    """Spending by category and month over the last `months` months (this one included)."""
    since = months_back(utcnow(), months)
    lines = await deps.store.report_lines(user_id, since)
    return {"since": since.isoformat(), "months_requested": months, **spending_report(lines)}
