"""The catalog service's Kafka subscribers (each runs in a transaction with the inbox).

The catalog owns what it publishes; it consumes only the observed delivery times the order
service measures (shown on products). A subscriber decodes, then calls one use case with
`ctx.tx` and `deps_of(ctx)` (`services/catalog/deps.py`).
"""

from __future__ import annotations

from services.catalog import usecases
from services.catalog.deps import deps_of
from shared.contracts.order import DeliveryTimeObserved
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("catalog")


@router.handles(DeliveryTimeObserved)
async def show_observed_eta(event: DeliveryTimeObserved, ctx: HandlerContext) -> None:
    await usecases.observed_eta(deps_of(ctx), ctx.tx, event.sku_id, event.p90_seconds)
