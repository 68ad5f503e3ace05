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
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType

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


def documented(**rules: Any) -> msgspec.Meta:
    """A field rule stated in the OpenAPI document (`pattern`, `min_length`, `max_length`, `enum`:
    `litestar.openapi.spec.Schema` names) that msgspec does not enforce while decoding: the use case
    checks it and answers the 422 with its own sentence next to the field (a page shows "is not a
    mainland China mobile number", not a regex). Build the rule from the same constant the use case
    checks, so the document and the check cannot drift."""
    return msgspec.Meta(extra_json_schema={"extra": rules})


def any_of_required(*fields: str) -> list[Schema]:
    """A struct-level rule: at least one of these fields is sent, and not as null (register needs
    an email or a phone). For a struct's `__openapi_any_of__`."""
    return [Schema(required=[f], properties={f: Schema(schema_not=Schema(type=OpenAPIType.NULL))}) for f in fields]


def document_bounds(app: Litestar, struct: str, field: str, *, minimum: int, maximum: int) -> None:
    """State a deployment's bounds of an integer field in its OpenAPI document: they come from
    settings, so the struct cannot carry them."""
    for name, schema in (app.openapi_schema.components.schemas or {}).items():
        if name.rsplit("_", 1)[-1] == struct and isinstance(schema, Schema) and schema.properties:
            prop = schema.properties.get(field)
            if isinstance(prop, Schema):
                prop.minimum, prop.maximum = minimum, maximum


def document_unknown_fields(app: Litestar) -> None:
    """Mark the request schemas of structs that refuse unknown fields with
    `additionalProperties: false` in the app's OpenAPI document (schemathesis sent extra fields
    as schema-valid and got 422), and state struct-level `__openapi_any_of__` rules as `anyOf`."""
    seen: set[type[msgspec.Struct]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            param = handler.parsed_fn_signature.parameters.get("data")
            if param is not None:
                _structs(param.annotation, seen)
    strict = {cls.__name__ for cls in seen if cls.__struct_config__.forbid_unknown_fields}
    # A rule across fields (`__openapi_any_of__`: a list of Schemas, one of which the body fits).
    any_of = {cls.__name__: rule for cls in seen if (rule := getattr(cls, "__openapi_any_of__", None))}
    if not strict and not any_of:
        return
    components = app.openapi_schema.components
    for name, schema in (components.schemas or {}).items():
        short = name.rsplit("_", 1)[-1]
        if short in strict and hasattr(schema, "additional_properties"):
            schema.additional_properties = False
        if short in any_of and isinstance(schema, Schema):
            schema.any_of = list(any_of[short])
