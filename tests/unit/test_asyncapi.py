from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.contracts import topics
from shared.contracts.registry import all_specs

ROOT = Path(__file__).resolve().parents[2]


def _rendered() -> str:
    # In a fresh interpreter: other tests register throwaway event types in this one.
    return subprocess.run(
        [sys.executable, "-m", "shared.contracts.asyncapi"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def test_asyncapi_document_is_current() -> None:
    committed = (ROOT / "docs" / "asyncapi.json").read_text()
    assert committed == _rendered(), "regenerate: python -m shared.contracts.asyncapi > docs/asyncapi.json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_covers_every_topic_and_event_and_every_ref_resolves() -> None:
    doc = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {*topics.ALL, "partnerOrderEvents"}
    assert "partner.order-events.v1" not in doc["channels"]  # the shared topic leaked every partner's orders
    messages = doc["components"]["messages"]
    for spec in all_specs():
        if spec.topic in topics.ALL:
            message = messages[f"{spec.type}.v{spec.version}"]
            assert f"{spec.type}.v{spec.version}" in doc["channels"][spec.topic]["messages"]
            assert message["payload"]["allOf"][1]["properties"]["type"] == {"const": spec.type}
    partner = doc["channels"]["partnerOrderEvents"]
    assert partner["address"] == topics.PARTNER_TOPIC_TEMPLATE == "partner.{partner_user_id}.order-events.v1"
    assert set(partner["parameters"]) == {"partner_user_id"}  # every {expression} of the address is declared
    assert list(partner["messages"]) == ["order.status-changed.public.v1"]
    schema = doc["components"]["schemas"]["PartnerOrderEvent"]
    assert set(schema["required"]) >= {"event_id", "occurred_at", "order_id", "partner_user_id", "status"}
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
