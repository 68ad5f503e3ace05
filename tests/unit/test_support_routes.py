"""Every public support path is served by support and reached through the gateway's table."""

from __future__ import annotations

from services.gateway.routes import owner_of
from services.support.app import create_app


def test_support_serves_its_public_paths_and_the_gateway_routes_them_there() -> None:
    paths = set(create_app().openapi_schema.to_schema()["paths"])
    public = {p for p in paths if p.startswith("/api/v1/")}
    assert {
        "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}/messages",
        "/api/v1/admin/tickets/{ticket_id}/resolve",
        "/api/v1/announcements",
        "/api/v1/help/articles",
        "/api/v1/notifications",
        "/api/v1/partner/webhooks",
        "/api/v1/partner/webhooks/{webhook_id}",
        "/api/v1/admin/urges",
        "/api/v1/admin/webhook-deliveries",
    } <= public
    for path in public:
        concrete = path.removeprefix("/api/v1/").replace("{", "x").replace("}", "")
        assert owner_of(concrete) == "support", path
