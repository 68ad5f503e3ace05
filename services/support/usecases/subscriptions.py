"""Scheduled orders (自动充值) as support sees them: a failed run is told to its owner, in-app
and by email, once (the consumer's inbox stops a redelivered event)."""

from __future__ import annotations

from services.support import domain
from services.support.deps import SupportDeps
from services.support.usecases.notifications import notify
from shared.contracts.order import SubscriptionRunFailed
from shared.messaging.outbox import Tx


async def run_failed(deps: SupportDeps, tx: Tx, event: SubscriptionRunFailed) -> None:
    subject, body = domain.subscription_failed_notice(
        event.subscription_id, event.run, event.reason, event.detail, event.next_run_at
    )
    ref = {"subscription_id": event.subscription_id, **({"order_id": event.order_id} if event.order_id else {})}
    await notify(deps, tx, user_id=event.user_id, kind="subscription.failed", subject=subject, body=body, ref=ref)
