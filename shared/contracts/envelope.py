"""The event envelope every Kafka message carries, and its (de)serialisation.

The envelope is the stable, versioned outer shape; `data` holds the event's own payload, whose
model is looked up by `type` in the registry (`shared.contracts.registry`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec


def new_id() -> str:
    """A random, URL-safe identifier for events, orders and other aggregates (UUID4 hex)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    type: str
    version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str | None
    key: str
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(body: bytes) -> Envelope:
    """Decode the outer envelope only; `data` stays raw until its model is known.

    Raises msgspec.DecodeError / msgspec.ValidationError for malformed input.
    """
    return _decoder.decode(body)
