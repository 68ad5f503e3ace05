"""Partner webhooks: register URLs (the secret is shown once), list, delete; the delivery log,
the dead-letter list and replay, for the partner and for staff."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter

from services.support.deps import SupportDeps
from services.support.schemas import NewWebhook, delivery_view, webhook_view
from services.support.usecases import webhooks
from shared.auth import STAFF, Caller
from shared.paging import Page, Paging

DeliveryStatusFilter = Annotated[str, Parameter(schema_extra={"enum": list(webhooks.DELIVERY_STATUSES)})]


class PartnerWebhooksController(Controller):
    tags = ["partner webhooks"]

    @post("/api/v1/partner/webhooks", status_code=201, summary="Register a webhook; the secret is shown only here")
    async def create(self, deps: SupportDeps, caller: Caller, data: NewWebhook) -> dict[str, Any]:
        doc = await webhooks.register(deps, caller.user_id, data.url, data.events)
        return {**webhook_view(doc), "secret": doc["secret"]}

    @get("/api/v1/partner/webhooks")
    async def list_own(self, deps: SupportDeps, caller: Caller) -> dict[str, Any]:
        return {"items": [webhook_view(d) for d in await webhooks.list_own(deps, caller.user_id)]}

    @delete("/api/v1/partner/webhooks/{webhook_id:str}", status_code=204)
    async def remove(self, deps: SupportDeps, caller: Caller, webhook_id: str) -> Response[None]:
        await webhooks.remove(deps, caller.user_id, webhook_id)
        return Response(None, status_code=204)

    @get("/api/v1/partner/webhooks/{webhook_id:str}/deliveries", summary="Delivery log, newest first")
    async def deliveries(
        self,
        deps: SupportDeps,
        caller: Caller,
        webhook_id: str,
        paging: Paging,
        status: DeliveryStatusFilter | None = None,
    ) -> Page[dict[str, Any]]:
        docs, total = await webhooks.deliveries_of(
            deps, caller.user_id, webhook_id, status=status, skip=paging.skip, limit=paging.limit
        )
        return paging.of([delivery_view(d) for d in docs], total)

    @post("/api/v1/partner/webhooks/{webhook_id:str}/deliveries/{delivery_id:str}/replay", status_code=200)
    async def replay(self, deps: SupportDeps, caller: Caller, webhook_id: str, delivery_id: str) -> dict[str, Any]:
        query = {"_id": delivery_id, "webhook_id": webhook_id, "partner_user_id": caller.user_id}
        return delivery_view(await webhooks.replay(deps, query))


class StaffWebhooksController(Controller):
    tags = ["partner webhooks (staff)"]
    guards = [STAFF]

    @get("/api/v1/admin/webhook-deliveries", summary="Deliveries by status (default: the dead-letter list)")
    async def list_deliveries(
        self, deps: SupportDeps, paging: Paging, status: DeliveryStatusFilter = "dead"
    ) -> Page[dict[str, Any]]:
        docs, total = await webhooks.deliveries_by_status(deps, status, skip=paging.skip, limit=paging.limit)
        return paging.of([delivery_view(d) for d in docs], total)

    @post("/api/v1/admin/webhook-deliveries/{delivery_id:str}/replay", status_code=200)
    async def replay(self, deps: SupportDeps, delivery_id: str) -> dict[str, Any]:
        return delivery_view(await webhooks.replay(deps, {"_id": delivery_id}))
