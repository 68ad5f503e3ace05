"""Real-name documents (上传手持证件照片): the buyer's upload and own reviews
(`/api/v1/me/real-name/documents`), and the staff review queue with the images
(`/api/v1/admin/real-name/reviews`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody, Parameter

from services.identity.deps import IdentityDeps
from services.identity.documents_domain import SIDES, STATUSES
from services.identity.usecases import documents
from shared.auth import STAFF, Caller
from shared.errors import validation_problem
from shared.paging import Page, Paging
from shared.strict_bodies import documented

ReviewStatusFilter = Annotated[str | None, Parameter(schema_extra={"enum": list(STATUSES)})]


@dataclass
class DocumentsUpload(Operation):
    """The upload's body in the document: the handler reads the form itself (to answer each
    missing or unreadable side next to its field), so Litestar cannot infer it."""

    def __post_init__(self) -> None:
        image = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="JPEG or PNG, at most 5 MB")
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT, properties=dict.fromkeys(SIDES, image), required=list(SIDES))
                )
            },
        )


class SubmittedView(msgspec.Struct, kw_only=True):
    review_id: str
    status: str


class MyReviewView(msgspec.Struct, kw_only=True):
    """What the buyer sees of their own review: never the images, never who decided."""

    review_id: str
    status: str
    created_at: str
    decided_at: str | None = None
    reason: str | None = None
    documents_verified: bool = False


class MyReviewsView(msgspec.Struct, kw_only=True):
    items: list[MyReviewView]


class SideView(msgspec.Struct, kw_only=True):
    media_type: str
    size: int


class ReviewView(msgspec.Struct, kw_only=True):
    review_id: str
    user_id: str
    status: str
    sides: dict[str, SideView]
    created_at: str
    images_available: bool
    real_name: str | None = None
    """The name the buyer passed the instant check with (staff compare it with the ID card)."""
    id_number_masked: str | None = None
    decided_at: str | None = None
    decided_by: str | None = None
    reason: str | None = None
    purge_after: str | None = None
    purged_at: str | None = None


class RejectIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500), documented(pattern=r"\S")]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def my_view(doc: dict[str, Any]) -> MyReviewView:
    return MyReviewView(
        review_id=doc["_id"],
        status=doc["status"],
        created_at=doc["created_at"].isoformat(),
        decided_at=_iso(doc.get("decided_at")),
        reason=doc.get("reason"),
        documents_verified=doc["status"] == "approved",
    )


def staff_view(doc: dict[str, Any]) -> ReviewView:
    return ReviewView(
        review_id=doc["_id"],
        user_id=doc["user_id"],
        status=doc["status"],
        sides={side: SideView(media_type=s["media_type"], size=s["size"]) for side, s in doc["sides"].items()},
        created_at=doc["created_at"].isoformat(),
        images_available=not doc.get("purged_at"),
        real_name=doc.get("real_name"),
        id_number_masked=doc.get("id_number_masked"),
        decided_at=_iso(doc.get("decided_at")),
        decided_by=doc.get("decided_by"),
        reason=doc.get("reason"),
        purge_after=_iso(doc.get("purge_after")),
        purged_at=_iso(doc.get("purged_at")),
    )


async def _shown(deps: IdentityDeps, doc: dict[str, Any]) -> ReviewView:
    [shown] = await documents.with_real_names(deps, [doc])
    return staff_view(shown)


async def _read_parts(request: Request[Any, Any, Any]) -> dict[str, bytes | None]:
    """Each side's file bytes from a multipart/form-data body (None: missing or not a file)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise validation_problem(
            [{"field": side, "message": "send the images as multipart/form-data"} for side in SIDES]
        )
    form = await request.form()
    parts: dict[str, bytes | None] = dict.fromkeys(SIDES)
    for key, value in form.multi_items():
        if key in parts and isinstance(value, UploadFile):
            parts[key] = await value.read()
    return parts


class RealNameDocumentsController(Controller):
    path = "/api/v1/me/real-name/documents"
    tags = ["identity"]

    @post(
        "/",
        status_code=202,
        summary="Upload the ID card's front, back and a selfie holding it (JPEG/PNG, ≤ 5 MB each) for review",
        operation_class=DocumentsUpload,
    )
    async def submit(self, deps: IdentityDeps, caller: Caller, request: Request[Any, Any, Any]) -> SubmittedView:
        review = await documents.submit(deps, caller, await _read_parts(request))
        return SubmittedView(review_id=review["_id"], status=review["status"])

    @get("/", summary="Your document reviews, newest first (status and the reason of a rejection)")
    async def mine(self, deps: IdentityDeps, caller: Caller) -> MyReviewsView:
        return MyReviewsView(items=[my_view(d) for d in await documents.my_reviews(deps, caller)])

    @get("/{review_id:str}", summary="One of your document reviews")
    async def one(self, deps: IdentityDeps, caller: Caller, review_id: str) -> MyReviewView:
        return my_view(await documents.my_review(deps, caller, review_id))


class AdminRealNameReviewsController(Controller):
    path = "/api/v1/admin/real-name/reviews"
    tags = ["identity"]
    guards = [STAFF]

    @get("/", summary="Real-name document reviews (?status=pending|approved|rejected; pending oldest first)")
    async def list_reviews(
        self, deps: IdentityDeps, paging: Paging, status: ReviewStatusFilter = None
    ) -> Page[ReviewView]:
        docs, total = await documents.reviews(deps, status, paging)
        return paging.of([staff_view(d) for d in await documents.with_real_names(deps, docs)], total)

    @get("/{review_id:str}", summary="One review (staff)")
    async def show(self, deps: IdentityDeps, review_id: str) -> ReviewView:
        return await _shown(deps, await documents.review(deps, review_id))

    @get("/{review_id:str}/{side:str}", summary="One image of a review, decrypted (front, back or selfie)")
    async def image(self, deps: IdentityDeps, review_id: str, side: str) -> Response[bytes]:
        data, media_type = await documents.image(deps, review_id, side)
        # Never kept by a browser or a proxy; served as the type its magic bytes proved.
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return Response(content=data, media_type=media_type, headers=headers)

    @post("/{review_id:str}/approve", status_code=200, summary="Approve: the person's documents are verified")
    async def approve(self, deps: IdentityDeps, caller: Caller, review_id: str) -> ReviewView:
        return await _shown(deps, await documents.approve(deps, caller, review_id))

    @post("/{review_id:str}/reject", status_code=200, summary="Reject with a reason the buyer reads")
    async def reject(self, deps: IdentityDeps, caller: Caller, review_id: str, data: JSONBody[RejectIn]) -> ReviewView:
        return await _shown(deps, await documents.reject(deps, caller, review_id, data.reason))
