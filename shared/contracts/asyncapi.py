"""An AsyncAPI 3.0 document of every topic, generated from the event registry:

    python -m shared.contracts.asyncapi > docs/asyncapi.json

Internal topics carry the envelope (shared/contracts/envelope.py) with the event's payload in
`data`; each message's schema pins `type` and `version` and gives `data` its payload schema.
Each partner's own topic `partner.{partner_user_id}.order-events.v1` (one parameterised channel,
`partnerOrderEvents`) carries the flat public `PartnerOrderEvent`. A unit test fails when the
committed document differs from what this prints.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import msgspec

from shared import contracts  # noqa: F401  (registers every event model)
from shared.contracts import topics
from shared.contracts.registry import EventSpec, all_specs
from shared.contracts.support import PARTNER_EVENT_TYPE, PartnerOrderEvent

REF = "#/components/schemas/{name}"
# Who writes each topic (through its outbox); `platform.events` is written by every service.
PRODUCERS = {
    topics.IDENTITY: "identity",
    topics.WALLET: "wallet",
    topics.CATALOG: "catalog",
    topics.ORDER: "order",
    topics.FULFILMENT: "fulfilment",
    topics.SUPPORT: "support",
    topics.PLATFORM: "every service",
}
PARTNER_CHANNEL = "partnerOrderEvents"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The outer shape of every internal message; `data` is the event's payload.",
    "required": [
        "event_id",
        "type",
        "version",
        "occurred_at",
        "producer",
        "correlation_id",
        "causation_id",
        "key",
        "data",
    ],
    "properties": {
        "event_id": {"type": "string", "description": "unique id; consumers deduplicate on it"},
        "type": {"type": "string"},
        "version": {"type": "integer"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "description": "the service whose outbox wrote it"},
        "correlation_id": {"type": "string", "description": "the outside request that started the chain"},
        "causation_id": {"type": ["string", "null"], "description": "the event that directly caused this one"},
        "key": {"type": "string", "description": "aggregate id; also the Kafka message key"},
        "data": {"type": "object"},
    },
}


def _message_id(spec: EventSpec) -> str:
    return f"{spec.type}.v{spec.version}"


def _doc(model: type) -> str:
    return " ".join((model.__doc__ or "").split())


def render_document() -> dict[str, Any]:
    specs = [s for s in all_specs() if s.topic in topics.ALL]
    _, components = msgspec.json.schema_components([s.model for s in specs] + [PartnerOrderEvent], ref_template=REF)
    schemas: dict[str, Any] = {"Envelope": ENVELOPE_SCHEMA, **components}
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        message_id = _message_id(spec)
        by_topic[spec.topic].append(message_id)
        messages[message_id] = {
            "name": spec.type,
            "title": f"{spec.type} v{spec.version}",
            "summary": _doc(spec.model) or spec.type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"event_id": {"type": "string"}, "event_type": {"const": spec.type}},
            },
            "payload": {
                "allOf": [
                    {"$ref": REF.format(name="Envelope")},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": spec.type},
                            "version": {"const": spec.version},
                            "key": {"type": "string", "description": f"the payload's `{spec.key_field}`"},
                            "data": {"$ref": REF.format(name=spec.model.__name__)},
                        },
                    },
                ]
            },
            "bindings": {
                "kafka": {"key": {"type": "string", "description": spec.key_field}, "bindingVersion": "0.5.0"}
            },
        }
    public_id = f"{PARTNER_EVENT_TYPE}.public.v1"
    messages[public_id] = {
        "name": PARTNER_EVENT_TYPE,
        "title": "Partner order event v1 (public, no envelope)",
        "summary": _doc(PartnerOrderEvent),
        "contentType": "application/json",
        "payload": {"$ref": REF.format(name=PartnerOrderEvent.__name__)},
        "bindings": {"kafka": {"key": {"type": "string", "description": "order_id"}, "bindingVersion": "0.5.0"}},
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics.ALL:
        ids = by_topic.get(topic, [])
        channels[topic] = {
            "address": topic,
            "description": f"Written by {PRODUCERS.get(topic, '?')}; failed messages go to `{topics.dlq(topic)}`.",
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in ids},
        }
        if ids:
            operations[f"publish {topic}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
                "messages": [{"$ref": f"#/channels/{topic}/messages/{mid}"} for mid in ids],
            }
    channels[PARTNER_CHANNEL] = {
        "address": topics.PARTNER_TOPIC_TEMPLATE,
        "title": "A partner's own order events",
        "description": "One topic per partner account, written by support (partner feed) and created when the "
        "account's first API key is; a partner's Kafka principal may read only its own topic and consumer "
        "groups starting `partner.{partner_user_id}.` (`GET /api/v1/partner/feed` tells both). No "
        "dead-letter topic: nothing of ours consumes it. See docs/partner-events.md.",
        "parameters": {
            "partner_user_id": {
                "description": "The partner account's user id (as in the events' `partner_user_id`).",
                "examples": ["3f6c0a9e2b7d4c1e8f5a6b7c8d9e0f1a"],
            }
        },
        "messages": {public_id: {"$ref": f"#/components/messages/{public_id}"}},
    }
    operations[f"publish {PARTNER_CHANNEL}"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{PARTNER_CHANNEL}"},
        "messages": [{"$ref": f"#/channels/{PARTNER_CHANNEL}/messages/{public_id}"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kameng events",
            "version": "1.0.0",
            "description": "Every Kafka topic of the Kameng platform. Generated from shared/contracts; "
            "see docs/events.md and docs/partner-events.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {"host": "kafka:9092", "protocol": "kafka", "description": "KAFKA_BOOTSTRAP_SERVERS"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> str:
    return json.dumps(render_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
