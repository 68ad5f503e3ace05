"""Registry of every event model: its type name, version, topic and aggregate key field.

An event model is a frozen msgspec Struct decorated with `@event(...)`. The registry is the one
place that maps a wire `type`/`version` to a model, so producers and consumers cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgspec

from shared.contracts.envelope import Envelope, decode_envelope


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base class of every event payload (the envelope's `data`)."""

    __event_type__: ClassVar[str]
    __event_version__: ClassVar[int]
    __topic__: ClassVar[str]
    __key_field__: ClassVar[str]

    def aggregate_key(self) -> str:
        return str(getattr(self, self.__key_field__))


@dataclass(frozen=True)
class EventSpec:
    model: type[Event]
    type: str
    version: int
    topic: str
    key_field: str


class MalformedEvent(Exception):
    """The message cannot be understood; it goes to the dead-letter topic with this reason."""


E = TypeVar("E", bound=Event)

_by_type: dict[tuple[str, int], EventSpec] = {}
_by_model: dict[type[Event], EventSpec] = {}


def event(type_: str, *, topic: str, key: str, version: int = 1) -> Callable[[type[E]], type[E]]:
    """Register an event model: `@event("order.placed", topic=topics.ORDER, key="order_id")`."""

    def register(model: type[E]) -> type[E]:
        if key not in model.__struct_fields__:
            raise TypeError(f"{model.__name__} has no key field {key!r}")
        spec = EventSpec(type=type_, version=version, topic=topic, key_field=key, model=model)
        existing = _by_type.get((type_, version))
        if existing is not None and existing.model is not model:
            raise TypeError(f"event {type_} v{version} registered twice")
        model.__event_type__ = type_
        model.__event_version__ = version
        model.__topic__ = topic
        model.__key_field__ = key
        _by_type[(type_, version)] = spec
        _by_model[model] = spec
        return model

    return register


def spec_for(model: type[Event]) -> EventSpec:
    return _by_model[model]


def lookup(type_: str, version: int) -> EventSpec | None:
    return _by_type.get((type_, version))


def all_specs() -> list[EventSpec]:
    return sorted(_by_type.values(), key=lambda s: (s.topic, s.type, s.version))


def decode(body: bytes) -> tuple[Envelope, Event]:
    """Decode a message value into its envelope and typed payload, or raise MalformedEvent."""
    try:
        envelope = decode_envelope(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedEvent(f"invalid envelope: {exc}") from exc
    spec = lookup(envelope.type, envelope.version)
    if spec is None:
        raise MalformedEvent(f"unknown event type {envelope.type!r} version {envelope.version}")
    try:
        payload: Event = msgspec.json.decode(envelope.data, type=spec.model)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedEvent(f"invalid {envelope.type} v{envelope.version} data: {exc}") from exc
    return envelope, payload


def payload_schema(spec: EventSpec) -> dict[str, Any]:
    """JSON Schema of an event's payload (used to generate docs/events.md and AsyncAPI)."""
    schema: dict[str, Any] = msgspec.json.schema(spec.model)
    return schema
