"""Showing a buyer what was delivered (`GET /api/v1/orders/{order_id}/card-keys`).

Only the order's owner (a partner's calls carry the partner's user) sees the codes; anyone else
gets the same 404 as for an order that does not exist. Every reveal is recorded (who, when, how)
without the codes, and nothing here logs them.
"""

from __future__ import annotations

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import DeliveryStatus
from services.fulfilment.schemas import CardKey, CardKeys
from services.fulfilment.usecases import reminders
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.errors import not_found


async def reveal(deps: FulfilmentDeps, caller: Caller, order_id: str, request_id: str | None) -> CardKeys:
    store = deps.store
    delivery = await store.get_delivery(order_id, user_id=caller.user_id)
    if delivery is None:
        raise not_found("order")
    keys: list[CardKey] = []
    if delivery["status"] == DeliveryStatus.SUCCEEDED:
        if delivery.get("reusable_key_id"):
            # 循环卡密: the one key every buyer of the SKU gets.
            opened = await store.open_key(deps.vault, delivery["reusable_key_id"])
            keys = [CardKey(code=opened[0], expires_at=opened[1])] if opened else []
        elif delivery["mode"] == "auto":
            # The first delivery, then any replacements (补发) made after tickets.
            for claim in [order_id, *[r["claim_id"] for r in delivery.get("reissues", [])]]:
                keys += [
                    CardKey(code=code, expires_at=expires)
                    for code, expires in await store.reveal_keys(deps.vault, claim, user_id=caller.user_id)
                ]
        elif delivery["mode"] == "manual":
            content = await store.task_content(order_id)
            if content:
                keys = [CardKey(code=deps.vault.open_document(content))]
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as MongoDB keeps it: one answer
    if keys and delivery.get("revealed_at") is None:
        await reminders.first_reveal(deps, order_id, caller.user_id, now)
    await store.record_reveal(
        {
            "order_id": order_id,
            "user_id": caller.user_id,
            "via": caller.via,
            "api_key_id": caller.api_key_id,
            "request_id": request_id,
            "count": len(keys),
            "at": now,
        }
    )
    return CardKeys(
        order_id=order_id,
        status=delivery["status"],
        card_keys=keys,
        revealed_at=delivery.get("revealed_at") or (now if keys else None),
    )
