"""RFC 9457 problem details (`application/problem+json`) for every error at the HTTP edge.

Raise `Problem(status, slug, title, detail)` from a handler; `type` becomes `/problems/<slug>`, so
clients can branch on the slug (`.../out-of-stock`, `.../insufficient-balance`). Validation errors
carry `errors: [{field, message}]`. Unknown routes, wrong methods and unexpected crashes are
turned into problems too; a crash never leaks its traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.types import ExceptionHandlersMap

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"


class Problem(ProblemDetailsException):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if errors is not None:
            extra["errors"] = errors
        super().__init__(
            detail=detail or title,
            status_code=status,
            headers=headers,
            extra=extra or None,
            type_=PROBLEM_BASE + slug,
            title=title,
        )
        self.slug = slug


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not-found", "Not found", f"no such {what}")


def validation_problem(errors: list[dict[str, str]], detail: str = "the request is not valid") -> Problem:
    """422: the request breaks a rule about its form (a rule the OpenAPI document states)."""
    return Problem(422, "validation-error", "Invalid request", detail, errors=errors)


def unknown_reference(errors: list[dict[str, str]], detail: str = "") -> Problem:
    """422: a well-formed request names something that does not exist (a SKU id in the body, a
    sub-site in a header). Its own slug, apart from `validation-error`, because no document can
    promise which ids exist: a client (or the schema fuzzer) can tell "fix the form" from "this
    thing is gone". The `errors` list has the same shape, so a page shows it next to the field."""
    return Problem(
        422, "unknown-reference", "Unknown reference", detail or "; ".join(e["message"] for e in errors), errors=errors
    )


def problem_response(request: Request[Any, Any, Any] | None, problem: Problem) -> Response[Any]:
    return problem.to_response(request)  # type: ignore[arg-type]


def _problem_handler(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    return exc.to_response(request)


def _validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = item.get("key") or item.get("source") or "body"
            errors.append({"field": str(field), "message": str(item.get("message", "invalid"))})
    detail = exc.detail if errors else (exc.detail or "the request body is not valid")
    return validation_problem(errors or [{"field": "body", "message": str(exc.detail)}], detail).to_response(request)


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    slug = {
        404: "not-found",
        405: "method-not-allowed",
        401: "unauthorized",
        403: "forbidden",
        413: "payload-too-large",
        429: "rate-limited",
    }.get(status)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": exc.detail if exc.detail and exc.detail != phrase else phrase,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=exc.headers)


def _crash_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "an unexpected error occurred; it has been logged",
    }
    return Response(body, status_code=500, media_type=PROBLEM_JSON)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ProblemDetailsException: _problem_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    Exception: _crash_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "Problem", "not_found", "validation_problem"]
