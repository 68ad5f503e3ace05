"""订单到期提醒: fulfilment found an order whose keys were never revealed and expire soon; the
owner is told in-app and by email, once (fulfilment emits it once per order, and the consumer's
inbox stops a redelivery)."""

from __future__ import annotations

from services.support import domain
from services.support.deps import SupportDeps
from services.support.usecases.notifications import notify
from shared.contracts.fulfilment import KeyExpiryReminder
from shared.messaging.outbox import Tx


async def key_expiring(deps: SupportDeps, tx: Tx, event: KeyExpiryReminder) -> None:
    subject, body = domain.key_expiry_notice(event.order_id, event.expires_at)
    await notify(
        deps,
        tx,
        user_id=event.user_id,
        kind="order.keys-expiring",
        subject=subject,
        body=body,
        ref={"order_id": event.order_id},
    )
