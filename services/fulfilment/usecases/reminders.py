"""待使用 and 订单到期提醒: the first time an owner reveals an order's keys is recorded (and told
to the order service, whose order center groups unrevealed orders as `to_use`); an order whose
keys were never revealed gets one reminder `KEY_REMINDER_DAYS` before the first of them expires
(in-app and by email, sent by support on `fulfilment.key-expiry-reminder`). Reusable (循环)
keys are reminded the same way: their expiry is kept on each delivery, since the key itself stays
available for the next buyer.

The sweep reads sold keys by expiry (a partial index on sold keys) and marks each claim's keys as
looked at in the transaction that decides about the claim, so a key is read once by the sweep,
not at every round. The reminder itself is claimed by a guarded update on the delivery
(`reminded_at` unset, `revealed_at` unset): two sweeps, or a sweep racing the owner's first
reveal, remind at most once and never after a reveal.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from services.fulfilment.deps import FulfilmentDeps
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import KeyExpiryReminder, KeysRevealed
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


async def first_reveal(deps: FulfilmentDeps, order_id: str, user_id: str, at: datetime) -> bool:
    """Record the owner's first reveal of an order's keys and tell the order service, once."""

    async def write(tx: Tx) -> bool:
        if not await deps.store.mark_revealed(tx, order_id, at):
            return False
        tx.emit(KeysRevealed(order_id=order_id, user_id=user_id, revealed_at=at))
        return True

    first: bool = await deps.uow.run(write)
    return first


async def remind_once(deps: FulfilmentDeps, limit: int = SWEEP_BATCH) -> int:
    """Remind the owners of unrevealed orders whose keys expire within the reminder window;
    returns how many reminders went out."""
    now = utcnow()
    horizon = now + timedelta(days=deps.settings.key_reminder_days)
    sent = 0
    due = await deps.store.expiring_sold_keys(now, horizon, limit)
    for order_id, expires_at in (await deps.store.expiring_reusable_deliveries(now, horizon, limit)).items():
        due.setdefault(order_id, expires_at)
    for order_id, expires_at in due.items():

        async def decide(tx: Tx, order_id: str = order_id, expires_at: datetime = expires_at) -> bool:
            await deps.store.keys_looked_at(tx, order_id)
            # A replacement's claim id is not a delivery: its order was reminded (or not) by its own keys.
            delivery = await deps.store.get_delivery(order_id, tx=tx)
            if delivery is None or not await deps.store.mark_reminded(tx, order_id, now):
                return False
            tx.emit(
                KeyExpiryReminder(
                    order_id=order_id, user_id=delivery["user_id"], sku_id=delivery["sku_id"], expires_at=expires_at
                )
            )
            return True

        sent += await deps.uow.run(decide)
    if sent:
        log.info("sent %d key-expiry reminder(s)", sent)
    return sent


async def remind_forever(rt: Runtime) -> None:
    """The reminder sweep, every `KEY_REMINDER_SWEEP_SECONDS`; a failed round is logged and tried
    again at the next one rather than restarting the loop with a growing backoff."""
    deps: FulfilmentDeps = rt.deps
    while True:
        try:
            await remind_once(deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("key-expiry reminder sweep failed; trying again")
        await asyncio.sleep(deps.settings.key_reminder_sweep_seconds)
