"""The assistant's Kafka event handlers: support's and catalog's content events -> its knowledge
store; catalog, order and support events -> its projections."""

from __future__ import annotations

from services.assistant import usecases
from services.assistant.deps import deps_of
from shared.contracts.catalog import ProductChanged, SkuChanged
from shared.contracts.order import OrderPlaced, OrderStatusChanged, OrderUrged
from shared.contracts.support import AnnouncementChanged, ArticleChanged, TicketOpened, TicketResolved
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("assistant")


@router.handles(ArticleChanged)
async def article_changed(event: ArticleChanged, ctx: HandlerContext) -> None:
    await usecases.article_changed(ctx.tx, deps_of(ctx), event)


@router.handles(AnnouncementChanged)
async def announcement_changed(event: AnnouncementChanged, ctx: HandlerContext) -> None:
    await usecases.announcement_changed(ctx.tx, deps_of(ctx), event)


@router.handles(ProductChanged)
async def product_changed(event: ProductChanged, ctx: HandlerContext) -> None:
    await usecases.product_changed(ctx.tx, deps_of(ctx), event)


@router.handles(SkuChanged)
async def learn_sku(event: SkuChanged, ctx: HandlerContext) -> None:
    await usecases.learn_sku(ctx.tx, deps_of(ctx), event)


@router.handles(OrderPlaced)
async def order_placed(event: OrderPlaced, ctx: HandlerContext) -> None:
    await usecases.order_placed(ctx.tx, deps_of(ctx), event, ctx.envelope.occurred_at)


@router.handles(OrderStatusChanged)
async def order_status_changed(event: OrderStatusChanged, ctx: HandlerContext) -> None:
    await usecases.order_status_changed(ctx.tx, deps_of(ctx), event)


@router.handles(OrderUrged)
async def order_urged(event: OrderUrged, ctx: HandlerContext) -> None:
    await usecases.order_urged(ctx.tx, deps_of(ctx), event)


@router.handles(TicketOpened)
async def ticket_opened(event: TicketOpened, ctx: HandlerContext) -> None:
    await usecases.ticket_opened(ctx.tx, deps_of(ctx), event)


@router.handles(TicketResolved)
async def ticket_resolved(event: TicketResolved, ctx: HandlerContext) -> None:
    await usecases.ticket_resolved(ctx.tx, deps_of(ctx), event)
