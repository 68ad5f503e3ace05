"""Small helpers shared by page controllers: form bodies, safe redirects, flash messages, evidence files."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response
from litestar.enums import RequestEncodingType
from litestar.params import Body

from services.web.client import ApiProblem
from services.web.session import Session
from services.web.visitor import Visitor

# A posted HTML form as {name: value} (the CSRF token is checked by the middleware before).
FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MultipartData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def local_target(raw: str | None, default: str = "/") -> str:
    """Where to go after a form: only paths on this site (no `//host`, no scheme), so `next=`
    cannot send a visitor elsewhere."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return default
    return raw


def text(data: dict[str, Any], name: str, limit: int = 2000) -> str:
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()[:limit]


async def evidence_file(visitor: Visitor, session: Session, ticket_id: str, file_id: str) -> Response[bytes]:
    """A ticket's evidence file (the buyer's upload). The API decides who may read it."""
    return await passed_through_file(
        visitor, session, f"tickets/{ticket_id}/evidence/{file_id}", cache_control="private, max-age=300"
    )


async def passed_through_file(visitor: Visitor, session: Session, path: str, *, cache_control: str) -> Response[bytes]:
    """A file an API path answers (a buyer's upload), passed through as it is and never run as a
    page here: no sniffing, a sandboxing CSP, and the caching the caller chooses."""
    answer = await visitor.deps.api.request(
        "GET", path, token=await visitor.deps.sessions.token(session), request_id=visitor.request_id
    )
    if answer.status_code >= 400:
        raise ApiProblem.from_response(answer)
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
            "Cache-Control": cache_control,
        },
    )
