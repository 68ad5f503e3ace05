"""What a buyer sees of a delivery: `GET /api/v1/orders/{order_id}/card-keys` (owner only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.schemas import CardKeys
from services.fulfilment.usecases import reveal
from shared.auth import Caller


class CardKeysController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @get("/{order_id:str}/card-keys", summary="The card keys (or delivered content) of my order", cache_control=None)
    async def card_keys(
        self, deps: FulfilmentDeps, caller: Caller, request: Request[Any, Any, Any], order_id: str
    ) -> CardKeys:
        return await reveal.reveal(deps, caller, order_id, request.scope["state"].get("request_id"))
