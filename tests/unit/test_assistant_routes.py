"""The assistant's public path: served by the assistant, routed there by the gateway, open to
anonymous callers, bad input answered as problem+json (no infrastructure needed for these)."""

from __future__ import annotations

from litestar.testing import TestClient

from deploy.services import BACKEND_SERVICES, process_env
from services.assistant.app import create_app
from services.assistant.settings import AssistantSettings
from services.gateway.public import is_public
from services.gateway.routes import owner_of
from services.gateway.settings import GatewaySettings
from tests.helpers import auth


def test_gateway_routes_the_ask_to_the_assistant_and_lets_anonymous_callers_in() -> None:
    assert owner_of("assistant/ask") == "assistant"
    assert is_public("POST", "assistant/ask")
    assert not is_public("GET", "assistant/ask") and not is_public("POST", "assistant/other")
    assert "assistant" in GatewaySettings().upstreams()


def test_the_platform_runs_it_reading_no_other_service_over_http() -> None:
    assert "assistant" in BACKEND_SERVICES
    ports = {name: 9000 + i for i, name in enumerate(("gateway", "support", "catalog", "assistant"))}
    env = process_env("assistant", ports, {})
    # Content arrives as support's and catalog's events: no other service's address.
    assert not {"SUPPORT_URL", "CATALOG_URL"} & set(env)
    assert not {"support_url", "catalog_url"} & set(AssistantSettings.model_fields)


def test_ask_answers_and_refuses_bad_input_as_problems() -> None:
    app = create_app(AssistantSettings(mongodb_timeout_ms=200, kafka_bootstrap_servers="127.0.0.1:1"))
    paths = set(app.openapi_schema.to_schema()["paths"])
    assert "/api/v1/assistant/ask" in paths
    with TestClient(app) as client:
        r = client.post("/api/v1/assistant/ask", json={"question": "在吗"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "answer": r.json()["answer"],
            "intent": "greeting",
            "confidence": 0.9,
            "sources": [],
            "actions": [],
        }
        r = client.post("/api/v1/assistant/ask", json={"question": "可以开发票吗"}, headers=auth())
        assert r.status_code == 200 and r.json()["intent"] == "handover"
        assert r.json()["actions"] == [{"kind": "open_ticket"}]
        for bad in ({"question": ""}, {"question": "   "}, {}, {"question": "x" * 501}, {"question": "a", "x": 1}):
            r = client.post("/api/v1/assistant/ask", json=bad)
            assert r.status_code in (400, 422), (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = client.post("/api/v1/assistant/ask", json={"question": "在吗", "order_id": "../x"})
        assert r.status_code in (400, 422)
        r = client.post("/api/v1/assistant/ask", json={"question": "在吗"}, headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
