"""JSON request bodies are checked strictly against their msgspec structs.

Litestar converts a body to the handler's struct in msgspec's lax mode, so `1` or `"true"` pass
as a boolean and `"5"` as an integer, while the published OpenAPI document says `boolean` and
`integer` (issue 12: schemathesis found schema-invalid requests accepted; partners generate
clients from that document). This `before_request` hook decodes the raw body once more in
strict mode and answers the 422 problem (the field and what it expected) when it does not fit.
A body that is not JSON at all is left to Litestar's own 400. `document_unknown_fields` makes the
document say what a struct with `forbid_unknown_fields` does (`additionalProperties: false`).
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import msgspec
from litestar import Litestar, Request
from litestar.exceptions import ValidationException

_PATH = re.compile(r" - at `\$(?:\.)?([^`]*)`$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_targets: dict[int, Any] = {}


def _is_struct_type(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return True
    return get_origin(annotation) in (list, tuple) and any(_is_struct_type(a) for a in get_args(annotation))


def _target(request: Request[Any, Any, Any]) -> Any:
    handler = request.route_handler
    key = id(handler)
    if key not in _targets:
        param = handler.parsed_fn_signature.parameters.get("data")
        annotation = param.annotation if param is not None else None
        _targets[key] = annotation if _is_struct_type(annotation) else None
    return _targets[key]


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    if request.method not in _BODY_METHODS or "json" not in request.headers.get("content-type", "json"):
        return
    target = _target(request)
    if target is None:
        return
    body = await request.body()
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # not JSON: Litestar answers it
    try:
        msgspec.convert(_integral(value), type=target, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        field = (match.group(1) if match else "") or "body"
        raise ValidationException(
            detail="the request body is not valid",
            extra=[{"key": field, "message": _PATH.sub("", message)}],
        ) from exc


def _integral(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer; msgspec's strict mode does not. Floats without a
    fraction become ints first, so only what the schema refuses is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _structs(annotation: Any, seen: set[type[msgspec.Struct]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation in seen:
            return
        seen.add(annotation)
        for f in msgspec.structs.fields(annotation):
            _structs(f.type, seen)
        return
    for arg in get_args(annotation):
        _structs(arg, seen)


def document_unknown_fields(app: Litestar) -> None:
    """Mark the request schemas of structs that refuse unknown fields with
    `additionalProperties: false` in the app's OpenAPI document (schemathesis sent extra fields
    as schema-valid and got 422)."""
    seen: set[type[msgspec.Struct]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            param = handler.parsed_fn_signature.parameters.get("data")
            if param is not None:
                _structs(param.annotation, seen)
    strict = {cls.__name__ for cls in seen if cls.__struct_config__.forbid_unknown_fields}
    if not strict:
        return
    components = app.openapi_schema.components
    for name, schema in (components.schemas or {}).items():
        if name.rsplit("_", 1)[-1] in strict and hasattr(schema, "additional_properties"):
            schema.additional_properties = False
