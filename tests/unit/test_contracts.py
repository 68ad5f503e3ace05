from __future__ import annotations

import msgspec
import pytest

from shared.contracts import topics
from shared.contracts.envelope import encode_envelope
from shared.contracts.platform import Canary
from shared.contracts.registry import Event, MalformedEvent, all_specs, decode, event, lookup
from shared.messaging.outbox import build_envelope


def test_roundtrip_through_envelope() -> None:
    env = build_envelope(Canary(canary_id="c1", origin="identity"), producer="identity", correlation_id="req-1")
    decoded_env, payload = decode(encode_envelope(env))
    assert payload == Canary(canary_id="c1", origin="identity")
    assert decoded_env.key == "c1" and decoded_env.type == "platform.canary" and decoded_env.version == 1
    assert decoded_env.correlation_id == "req-1" and decoded_env.producer == "identity"


def test_correlation_defaults_to_the_event_itself() -> None:
    env = build_envelope(Canary(canary_id="c1", origin="x"), producer="x")
    assert env.correlation_id == env.event_id and env.causation_id is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid envelope"),
        (b'{"event_id": "e"}', "invalid envelope"),
        (
            b'{"event_id":"e","type":"nope","version":1,"occurred_at":"2026-01-01T00:00:00Z","producer":"p",'
            b'"correlation_id":"c","causation_id":null,"key":"k","data":{}}',
            "unknown event type 'nope'",
        ),
        (
            b'{"event_id":"e","type":"platform.canary","version":9,"occurred_at":"2026-01-01T00:00:00Z","producer":"p",'
            b'"correlation_id":"c","causation_id":null,"key":"k","data":{}}',
            "version 9",
        ),
        (
            b'{"event_id":"e","type":"platform.canary","version":1,"occurred_at":"2026-01-01T00:00:00Z","producer":"p",'
            b'"correlation_id":"c","causation_id":null,"key":"k","data":{"canary_id":1}}',
            "invalid platform.canary",
        ),
    ],
)
def test_malformed_messages_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode(body)


def test_registration_rules() -> None:
    with pytest.raises(TypeError, match="no key field"):

        @event("test.bad", topic="t", key="missing")
        class Bad(Event, frozen=True):
            other: str

    assert lookup("platform.canary", 1) is not None
    with pytest.raises(TypeError, match="registered twice"):

        @event("platform.canary", topic=topics.PLATFORM, key="canary_id")
        class Clash(Event, frozen=True):
            canary_id: str


def test_every_registered_event_is_on_a_known_topic_and_has_a_schema() -> None:
    for spec in all_specs():
        if spec.type.startswith("test."):
            continue
        assert spec.topic in topics.ALL
        assert msgspec.json.schema(spec.model)


def test_topics_have_dead_letter_twins() -> None:
    assert topics.dlq("order.events") == "order.events.dlq"
    assert set(topics.all_with_dlq()) == set(topics.ALL) | {t + ".dlq" for t in topics.ALL}


def test_events_document_is_current() -> None:
    # In a fresh interpreter: other tests register throwaway event types in this one.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    rendered = subprocess.run(
        [sys.executable, "-m", "shared.contracts.catalogue"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    committed = (root / "docs" / "events.md").read_text()
    assert committed == rendered, "regenerate: python -m shared.contracts.catalogue > docs/events.md"
