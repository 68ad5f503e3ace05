"""Top-ups: create one with the provider, apply its signed notifications, poll it when they do
not come, and staff approval of bank transfers. A top-up moves pending -> succeeded | failed
exactly once (`domain.TOPUP`); crediting it books its entries in the same transaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.wallet import metrics
from services.wallet.deps import WalletDeps, deps_of_runtime
from services.wallet.domain import (
    BANK,
    TopupStatus,
    order_of_trade,
    points_for_topup,
    provider_mismatch,
    signature_valid,
    topup_postings,
    topup_request_errors,
)
from services.wallet.provider import ProviderError
from services.wallet.store import WalletStore
from services.wallet.usecases import order_payments
from services.wallet.usecases.accounts import open_account
from services.wallet.usecases.order_payments import mismatch_problem
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.wallet import TopupSucceeded
from shared.errors import Problem, not_found, validation_problem
from shared.idempotency import fingerprint, idempotency_key
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

Doc = dict[str, Any]


def not_pending(detail: str) -> Problem:
    return Problem(409, "topup-not-pending", "Top-up not pending", detail)


# -- the buyer ------------------------------------------------------------------------------------


async def create_topup(deps: WalletDeps, user_id: str, amount_cents: int, channel: str, raw_key: str | None) -> Doc:
    """Start a top-up: registered with the provider (its pay_url) or, for a bank transfer, left
    for staff. The same Idempotency-Key and body answer the first top-up again."""
    settings = deps.settings
    errors = topup_request_errors(
        amount_cents, channel, raw_key, min_cents=settings.topup_min_cents, max_cents=settings.topup_max_cents
    )
    if errors:
        raise validation_problem(errors)
    key = idempotency_key(raw_key)
    fp = fingerprint({"amount_cents": amount_cents, "channel": channel})
    earlier = await deps.store.recall_topup(user_id, key, fp)
    if earlier is not None:
        return await _earlier(deps.store, earlier)

    topup_id, now = new_id(), utcnow()
    doc: Doc = {
        "_id": topup_id,
        "user_id": user_id,
        "amount_cents": amount_cents,
        "channel": channel,
        "status": TopupStatus.PENDING.value,
        "created_at": now,
        "pay_url": None,
    }
    if channel != BANK:
        try:
            created = await deps.provider.create_order(trade_no=topup_id, amount_cents=amount_cents, channel=channel)
        except ProviderError as exc:
            log.warning("payment provider refused top-up %s: %s", topup_id, exc)
            metrics.topup("provider_error", channel)
            raise Problem(
                502,
                "payment-provider-error",
                "Payment provider error",
                "the payment provider could not take the payment",
            ) from exc
        doc.update(provider_trade_no=created["provider_trade_no"], pay_url=created["pay_url"])

    async def write(tx: Tx) -> None:
        # Read-your-writes after registering: the account opens on first use, in this
        # transaction. `identity.user-registered` may arrive before or after; the upsert by user
        # id lets exactly one of them open it (a racing twin conflicts, retries, finds it open).
        await open_account(tx, user_id, deps.store)
        await deps.store.add_topup(tx, doc)
        await deps.store.remember_topup(tx, user_id, key, fp, topup_id)

    try:
        await deps.uow.run(write)
    except DuplicateKeyError:
        # A concurrent request with the same key won: answer with its top-up.
        earlier = await deps.store.recall_topup(user_id, key, fp)
        if earlier is None:
            raise
        return await _earlier(deps.store, earlier)
    metrics.topup("started", channel)
    return doc


async def _earlier(store: WalletStore, topup_id: str) -> Doc:
    doc = await store.topup(topup_id)
    if doc is None:
        raise not_found("top-up")
    return doc


async def topup_of(deps: WalletDeps, user_id: str, topup_id: str) -> Doc:
    """The caller's own top-up (404 for anyone else's)."""
    doc = await deps.store.topup(topup_id, user_id=user_id)
    if doc is None:
        raise not_found("top-up")
    return doc


# -- moving a top-up ----------------------------------------------------------------------------------


async def credit_topup(
    tx: Tx,
    topup_id: str,
    *,
    points_per_yuan: int,
    via: str,
    extra: Doc | None = None,
    store: WalletStore | None = None,
) -> Doc | None:
    """Mark a pending top-up succeeded and credit it, once. None when it was no longer pending
    (a repeated notification, a poll racing a notification): nothing is credited again."""
    store = store or WalletStore(tx.db)
    now = utcnow()
    topup = await store.move_topup(
        tx, topup_id, TopupStatus.SUCCEEDED, {"succeeded_at": now, "credited_via": via, **(extra or {})}
    )
    if topup is None:
        return None
    amount, user_id, channel = topup["amount_cents"], topup["user_id"], topup["channel"]
    points = points_for_topup(amount, points_per_yuan)
    account = await store.credit(tx, user_id, amount, points)
    if account is None:
        raise RuntimeError(f"top-up {topup_id} for user {user_id} who has no account")
    entries = topup_postings(
        topup_id,
        user_id,
        channel,
        amount,
        points,
        at=now,
        user_fields={
            "channel": channel,
            "balance_after_cents": account["balance_cents"],
            "points_after": account["points"],
        },
    )
    await store.book(tx, entries)
    tx.emit(TopupSucceeded(topup_id=topup_id, user_id=user_id, amount_cents=amount, points=points, channel=channel))
    tx.after_commit(lambda: metrics.topup_after_commit("succeeded", channel))
    return topup


async def fail_topup(
    tx: Tx, topup_id: str, *, reason: str, extra: Doc | None = None, store: WalletStore | None = None
) -> bool:
    """Mark a pending top-up failed; False when it was no longer pending."""
    store = store or WalletStore(tx.db)
    fields = {"failed_at": utcnow(), "failure_reason": reason, **(extra or {})}
    failed = await store.move_topup(tx, topup_id, TopupStatus.FAILED, fields)
    if failed is None:
        return False
    channel = str(failed.get("channel", "other"))
    tx.after_commit(lambda: metrics.topup_after_commit("failed", channel))
    return True


# -- the provider -------------------------------------------------------------------------------------


async def apply_provider_result(deps: WalletDeps, topup: Doc, fields: Doc, *, via: str) -> str:
    """Apply what the provider says about a top-up (a verified notification or query answer) once
    the trade numbers and amount match: 'credited', 'failed', 'pending' or 'unchanged'."""
    slug = provider_mismatch(topup, fields)
    if slug is not None:
        log.warning("payment %s for top-up %s rejected: %s", via, topup["_id"], slug)
        raise mismatch_problem(slug)
    status = fields.get("status")
    points_per_yuan = deps.settings.topup_points_per_yuan
    if status == "success":

        async def credit(tx: Tx) -> Doc | None:
            return await credit_topup(
                tx,
                topup["_id"],
                points_per_yuan=points_per_yuan,
                via=via,
                extra={"provider_trade_no": fields.get("provider_trade_no")},
                store=deps.store,
            )

        if await deps.uow.run(credit) is not None:
            log.info("top-up %s credited (%s)", topup["_id"], via)
            return "credited"
        current = await deps.store.topup(topup["_id"])
        if current and current["status"] == TopupStatus.FAILED:
            log.error("top-up %s was paid after it was marked failed: needs a staff review", topup["_id"])
        return "unchanged"
    if status in ("fail", "closed"):
        why = "expired unpaid" if status == "closed" else "payment failed"

        async def fail(tx: Tx) -> bool:
            return await fail_topup(tx, topup["_id"], reason=f"{why} ({via})", store=deps.store)

        return "failed" if await deps.uow.run(fail) else "unchanged"
    return "pending"


async def handle_notification(deps: WalletDeps, channel: str, fields: Doc) -> str:
    """A signed notification from the provider (401 bad signature, 404 unknown trade, 422 mismatch)."""
    secret = deps.settings.payment_provider_secret.get_secret_value()
    trade_no = str(fields.get("merchant_trade_no", ""))[:64]
    if not signature_valid(fields, secret):
        log.warning("payment notification with a bad signature rejected (channel %s, trade %s)", channel, trade_no)
        raise Problem(401, "invalid-signature", "Invalid signature", "the notification signature is not valid")
    order_id = order_of_trade(trade_no)
    if order_id is not None:
        return await order_payments.handle_notification(deps, channel, order_id, fields)
    topup = await deps.store.topup(trade_no)
    if topup is None or topup["channel"] != channel:
        log.warning("payment notification for unknown trade %s on channel %s rejected", trade_no, channel)
        raise Problem(404, "unknown-trade", "Unknown trade", "no top-up with this trade number on this channel")
    return await apply_provider_result(deps, topup, fields, via="notify")


async def poll_once(deps: WalletDeps) -> int:
    """Ask the provider about top-ups still pending after `topup_poll_after_seconds`; returns
    how many changed."""
    settings = deps.settings
    pending = await deps.store.unanswered_topups(utcnow() - timedelta(seconds=settings.topup_poll_after_seconds))
    changed = 0
    expire_before = utcnow() - timedelta(seconds=settings.topup_expire_after_seconds)
    for topup in pending:
        try:
            answer = await deps.provider.query(topup["_id"])
            if answer.get("status") == "pending" and topup["created_at"] <= expire_before:
                # Unpaid for too long: close it at the provider first, so it cannot be paid after
                # we have given up on it (closing answers `success` if the buyer just paid).
                answer = await deps.provider.close(topup["_id"])
            outcome = await apply_provider_result(deps, topup, answer, via="poll")
        except (ProviderError, Problem) as exc:
            log.warning("polling top-up %s: %s", topup["_id"], exc)
            continue
        changed += outcome in ("credited", "failed")
    return changed


async def poll_topups(rt: Runtime) -> None:
    """The wallet's background loop (`ServiceSpec.background`): lost callbacks still complete.
    Every replica may run it; crediting is exactly once. A round that fails (the database away)
    ends the loop: the factory restarts it with backoff and shows it in /health/ready."""
    deps = deps_of_runtime(rt)
    interval = deps.settings.topup_poll_interval_seconds
    while True:
        await asyncio.sleep(interval)
        changed = await poll_once(deps)
        if changed:
            log.info("top-up poll completed %d top-ups", changed)


# -- staff: bank transfers ------------------------------------------------------------------------------


async def list_topups(deps: WalletDeps, status: str, channel: str | None, user_id: str | None) -> list[Doc]:
    return await deps.store.topups(status, channel=channel, user_id=user_id)


async def _bank_topup(store: WalletStore, topup_id: str) -> Doc:
    doc = await store.topup(topup_id)
    if doc is None:
        raise not_found("top-up")
    if doc["channel"] != BANK:
        raise Problem(
            409,
            "not-a-bank-transfer",
            "Not a bank transfer",
            "only bank transfers are approved by hand; provider payments complete by notification",
        )
    return doc


async def approve_bank_topup(deps: WalletDeps, staff_id: str, topup_id: str, note: str) -> Doc:
    """Credit a bank transfer after staff checked it (audited): the top-up after."""
    doc = await _bank_topup(deps.store, topup_id)
    if not note.strip():
        raise validation_problem([{"field": "note", "message": "say what was checked (bank reference)"}])
    audit = {"approved_by": staff_id, "approved_at": utcnow(), "approval_note": note.strip()[:500]}
    points = deps.settings.topup_points_per_yuan

    async def credit(tx: Tx) -> Doc | None:
        return await credit_topup(tx, topup_id, points_per_yuan=points, via="staff", extra=audit, store=deps.store)

    credited = await deps.uow.run(credit)
    if credited is None:
        raise not_pending(f"the top-up is {doc['status']}")
    log.info("bank top-up %s approved by %s", topup_id, staff_id)
    return credited


async def reject_bank_topup(deps: WalletDeps, staff_id: str, topup_id: str, note: str) -> Doc:
    """Refuse a bank transfer (audited): the top-up after."""
    await _bank_topup(deps.store, topup_id)
    audit = {"rejected_by": staff_id, "rejected_at": utcnow(), "rejection_note": note.strip()[:500]}

    async def fail(tx: Tx) -> bool:
        return await fail_topup(tx, topup_id, reason="rejected by staff", extra=audit, store=deps.store)

    if not await deps.uow.run(fail):
        raise not_pending("the top-up is no longer pending")
    return await _earlier(deps.store, topup_id)
