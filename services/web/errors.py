"""Error pages: what a browser sees instead of problem+json. Sign-in needed → a redirect to the
sign-in page (back here afterwards); wrong role → 403 page; missing or someone else's → 404
page; the platform down → a 502 page; a crash → a 500 page (logged, never a traceback)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from services.web.client import ApiProblem
from services.web.session import PageForbidden, PageNotFound, SignInRequired
from services.web.visitor import Visitor

log = logging.getLogger(__name__)


def _page(request: Request[Any, Any, Any], status: int, key: str) -> Any:
    visitor: Visitor | None = request.scope.get("state", {}).get("visitor")
    if visitor is None:
        return Response(
            f"<!doctype html><html lang=zh-CN><title>{status}</title><h1>{status}</h1></html>",
            status_code=status,
            media_type="text/html",
        )
    return Template(
        template_name="errors/error.html",
        context={"v": visitor, "t": visitor.t, "status": status, "key": key},
        status_code=status,
    )


def sign_in_required(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = request.headers.get("hx-current-url") or "/"
    location = "/login?next=" + quote(target, safe="")
    if request.headers.get("hx-request") == "true":
        # htmx follows HX-Redirect with a full page load (a 303 would be swapped into the page).
        return Response(b"", status_code=200, headers={"HX-Redirect": location})
    return Redirect(location, status_code=303)


def forbidden(request: Request[Any, Any, Any], exc: Exception) -> Any:
    return _page(request, 403, "error.403")


def not_found(request: Request[Any, Any, Any], exc: Exception) -> Any:
    return _page(request, 404, "error.404")


def api_problem(request: Request[Any, Any, Any], exc: ApiProblem) -> Any:
    if exc.status == 404:
        return _page(request, 404, "error.404")
    if exc.status == 403:
        return _page(request, 403, "error.403")
    if exc.status == 401:
        return sign_in_required(request, SignInRequired())
    if exc.status >= 500:
        log.warning("API unavailable for %s: %s", request.url.path, exc)
        return _page(request, 502, "error.502")
    # A refusal the page did not expect to handle as a form error: shown, not a crash.
    log.info("unhandled API refusal on %s: %s", request.url.path, exc)
    return _page(request, exc.status, "error.500")


def crash(request: Request[Any, Any, Any], exc: Exception) -> Any:
    log.exception("page %s failed", request.url.path)
    return _page(request, 500, "error.500")


HTML_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: sign_in_required,
    PageForbidden: forbidden,
    PermissionDeniedException: forbidden,
    PageNotFound: not_found,
    NotFoundException: not_found,
    ApiProblem: api_problem,
    Exception: crash,
}
