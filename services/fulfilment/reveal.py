"""Showing a buyer what was delivered: `GET /api/v1/orders/{order_id}/card-keys`.

Only the order's owner (a partner's calls carry the partner's user) sees the codes; anyone else
gets the same 404 as for an order that does not exist. Every reveal is recorded (who, when, how)
without the codes, and nothing here logs them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get

from services.fulfilment.api import vault_for
from services.fulfilment.deliveries import DELIVERIES, MANUAL_TASKS
from services.fulfilment.store import reveal_keys
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.errors import not_found
from shared.runtime import Runtime

REVEALS = "reveals"


class CardKey(msgspec.Struct, kw_only=True):
    code: str
    expires_at: datetime | None = None


class CardKeys(msgspec.Struct, kw_only=True):
    order_id: str
    status: str
    card_keys: list[CardKey]


class CardKeysController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @get("/{order_id:str}/card-keys", summary="The card keys (or delivered content) of my order", cache_control=None)
    async def card_keys(
        self, runtime: Runtime, caller: Caller, request: Request[Any, Any, Any], order_id: str
    ) -> CardKeys:
        db = runtime.mongo.db
        delivery = await db[DELIVERIES].find_one({"_id": order_id, "user_id": caller.user_id})
        if delivery is None:
            raise not_found("order")
        keys: list[CardKey] = []
        vault = vault_for(runtime.settings)
        if delivery["status"] == "succeeded":
            if delivery["mode"] == "auto":
                # The first delivery, then any replacements (补发) made after tickets.
                for claim in [order_id, *[r["claim_id"] for r in delivery.get("reissues", [])]]:
                    keys += [
                        CardKey(code=code, expires_at=expires)
                        for code, expires in await reveal_keys(db, vault, claim, user_id=caller.user_id)
                    ]
            elif delivery["mode"] == "manual":
                task = await db[MANUAL_TASKS].find_one({"_id": order_id}, {"content": 1})
                if task and task.get("content"):
                    keys = [CardKey(code=vault.open_document(task["content"]))]
        await db[REVEALS].insert_one(
            {
                "order_id": order_id,
                "user_id": caller.user_id,
                "via": caller.via,
                "api_key_id": caller.api_key_id,
                "request_id": request.scope["state"].get("request_id"),
                "count": len(keys),
                "at": utcnow(),
            }
        )
        return CardKeys(order_id=order_id, status=delivery["status"], card_keys=keys)
