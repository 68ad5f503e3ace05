"""Top-ups: create one with the provider, apply its signed notifications, poll it when they do not
come, and staff approval of bank transfers. Crediting is `ledger.credit_topup`: exactly once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from services.wallet import ledger
from services.wallet.domain import signature_valid
from services.wallet.provider import PROVIDER_CHANNELS, PaymentProvider, ProviderError
from services.wallet.settings import WalletSettings
from services.wallet.store import TOPUPS
from shared.contracts.envelope import utcnow
from shared.errors import Problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)


def settings_of(rt: Runtime) -> WalletSettings:
    assert isinstance(rt.settings, WalletSettings)
    return rt.settings


async def apply_provider_result(rt: Runtime, topup: dict[str, Any], fields: dict[str, Any], *, via: str) -> str:
    """Apply what the provider says about a top-up (a verified notification or query answer) once
    the trade numbers and amount match: 'credited', 'failed', 'pending' or 'unchanged'."""
    problem = mismatch(topup, fields)
    if problem is not None:
        log.warning("payment %s for top-up %s rejected: %s", via, topup["_id"], problem.detail)
        raise problem
    status = fields.get("status")
    points_per_yuan = settings_of(rt).topup_points_per_yuan
    if status == "success":

        async def credit(tx: Tx) -> dict[str, Any] | None:
            return await ledger.credit_topup(
                tx,
                topup["_id"],
                points_per_yuan=points_per_yuan,
                via=via,
                extra={"provider_trade_no": fields.get("provider_trade_no")},
            )

        if await rt.uow.run(credit) is not None:
            log.info("top-up %s credited (%s)", topup["_id"], via)
            return "credited"
        current = await rt.mongo.db[TOPUPS].find_one({"_id": topup["_id"]}, {"status": 1})
        if current and current["status"] == "failed":
            log.error("top-up %s was paid after it was marked failed: needs a staff review", topup["_id"])
        return "unchanged"
    if status in ("fail", "closed"):
        why = "expired unpaid" if status == "closed" else "payment failed"

        async def fail(tx: Tx) -> bool:
            return await ledger.fail_topup(tx, topup["_id"], reason=f"{why} ({via})")

        return "failed" if await rt.uow.run(fail) else "unchanged"
    return "pending"


def mismatch(topup: dict[str, Any], fields: dict[str, Any]) -> Problem | None:
    """A notification must name this top-up's provider trade number and its exact amount."""
    if fields.get("provider_trade_no") != topup.get("provider_trade_no"):
        return Problem(
            422, "trade-mismatch", "Trade number mismatch", "the provider trade number does not match the top-up"
        )
    amount = fields.get("amount_cents")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount != topup["amount_cents"]:
        return Problem(422, "amount-mismatch", "Amount mismatch", "the amount does not match the top-up")
    return None


async def handle_notification(rt: Runtime, channel: str, fields: dict[str, Any]) -> str:
    secret = settings_of(rt).payment_provider_secret.get_secret_value()
    trade_no = str(fields.get("merchant_trade_no", ""))[:64]
    if not signature_valid(fields, secret):
        log.warning("payment notification with a bad signature rejected (channel %s, trade %s)", channel, trade_no)
        raise Problem(401, "invalid-signature", "Invalid signature", "the notification signature is not valid")
    topup = await rt.mongo.db[TOPUPS].find_one({"_id": trade_no})
    if topup is None or topup["channel"] != channel:
        log.warning("payment notification for unknown trade %s on channel %s rejected", trade_no, channel)
        raise Problem(404, "unknown-trade", "Unknown trade", "no top-up with this trade number on this channel")
    return await apply_provider_result(rt, topup, fields, via="notify")


async def poll_once(rt: Runtime, provider: PaymentProvider) -> int:
    """Ask the provider about top-ups still pending after `topup_poll_after_seconds`; returns
    how many changed."""
    settings = settings_of(rt)
    cutoff = utcnow() - timedelta(seconds=settings.topup_poll_after_seconds)
    pending = (
        await rt.mongo.db[TOPUPS]
        .find({"status": "pending", "channel": {"$in": list(PROVIDER_CHANNELS)}, "created_at": {"$lte": cutoff}})
        .sort("created_at", 1)
        .to_list(length=200)
    )
    changed = 0
    expire_before = utcnow() - timedelta(seconds=settings.topup_expire_after_seconds)
    for topup in pending:
        try:
            answer = await provider.query(topup["_id"])
            if answer.get("status") == "pending" and topup["created_at"] <= expire_before:
                # Unpaid for too long: close it at the provider first, so it cannot be paid after
                # we have given up on it (closing answers `success` if the buyer just paid).
                answer = await provider.close(topup["_id"])
            outcome = await apply_provider_result(rt, topup, answer, via="poll")
        except (ProviderError, Problem) as exc:
            log.warning("polling top-up %s: %s", topup["_id"], exc)
            continue
        changed += outcome in ("credited", "failed")
    return changed


async def poll_forever(rt: Runtime, provider: PaymentProvider) -> None:
    """The wallet's background task: lost callbacks still complete (every replica may run it;
    crediting is exactly once)."""
    interval = settings_of(rt).topup_poll_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            changed = await poll_once(rt, provider)
            if changed:
                log.info("top-up poll completed %d top-ups", changed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("top-up poll failed; trying again in %.0fs", interval)
