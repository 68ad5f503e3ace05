"""Real-name documents (上传手持证件照片): a buyer who passed the instant check uploads the ID
card's front and back and a selfie holding it; staff look at the images and approve or reject
with a reason the buyer reads; the images are deleted once the review's retention period has
passed, the review record stays (architecture Decision 28, docs/identity.md).

The instant checksum check (`POST /me/real-name`) stays first: documents are accepted only from
an account it verified, and approval marks that real-name record documents-verified. Every image
is sealed with AES-GCM under `IDENTITY_SECRETS_KEY`, bound to its review, side and owner, and never
goes into a log line or an event.

Writing order: the sealed images first, then the review (whose unique `open_for` makes "one
pending review per buyer" hold under races). A crash in between leaves images no review names;
the sweep deletes those after a grace period, so nothing is half-visible to staff."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.identity.deps import IdentityDeps, deps_from
from services.identity.documents_domain import SIDES, STATUSES, image_type, part_problems, reason_problem
from services.identity.documents_store import DocumentStore
from services.identity.domain import account_owner_only
from shared.auth import Caller
from shared.contracts.envelope import new_id
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.paging import Paging
from shared.runtime import Runtime

log = logging.getLogger(__name__)

Doc = dict[str, Any]

ORPHAN_GRACE = timedelta(minutes=10)
"""Images no review names are deleted this long after upload (far longer than the moment between
storing the images and writing the review)."""


def _store(deps: IdentityDeps) -> DocumentStore:
    return DocumentStore(deps.store.db)


def _context(review_id: str, side: str, user_id: str) -> str:
    """What a sealed image is bound to: copied to another review, side or owner it does not open."""
    return f"real-name-document:{review_id}:{side}:{user_id}"


async def submit(deps: IdentityDeps, caller: Caller, parts: dict[str, bytes | None]) -> Doc:
    """Accept a submission for review: the pending review. 413/422 naming the bad part; 409 when
    the instant check has not passed, a review is pending or documents were approved already."""
    account_owner_only(caller)
    errors, too_large = part_problems(parts, max_bytes=deps.settings.real_name_document_max_bytes)
    if errors:
        if too_large:
            raise Problem(413, "payload-too-large", "File too large", "an image is over the size limit", errors=errors)
        raise validation_problem(errors)
    store = _store(deps)
    user_id = caller.user_id
    account = await store.real_name_of(user_id)
    if account is None:
        raise not_found("account")
    real_name = account.get("real_name")
    if not real_name:
        raise Problem(
            409, "real-name-required", "Real name first", "pass the instant check (POST /api/v1/me/real-name) first"
        )
    if real_name.get("documents_verified_at"):
        raise Problem(409, "documents-approved", "Already approved", "this account's documents were approved already")
    if pending := await store.pending_of(user_id):
        raise _pending(pending)

    now = deps.clock()
    review_id = new_id()
    images: dict[str, Doc] = {}
    sides: dict[str, Doc] = {}
    for side in SIDES:
        data = parts[side]
        assert data is not None  # part_problems refused missing parts
        images[side] = deps.box.seal_bytes(data, context=_context(review_id, side, user_id))
        sides[side] = {"media_type": image_type(data), "size": len(data)}
    await store.put_images(review_id, images, now)
    review = {"_id": review_id, "user_id": user_id, "status": "pending", "sides": sides, "created_at": now}
    try:
        await store.add_review(review)
    except DuplicateKeyError:
        # A twin upload won the race: its review stands, these images go.
        await store.delete_images(review_id)
        pending = await store.pending_of(user_id)
        raise _pending(pending) from None
    log.info("real-name documents submitted for review %s", review_id)
    return review


def _pending(review: Doc | None) -> Problem:
    detail = "a review of your documents is pending"
    if review is not None:
        detail += f" ({review['_id']})"
    return Problem(409, "review-pending", "Review pending", detail)


async def my_reviews(deps: IdentityDeps, caller: Caller) -> list[Doc]:
    return await _store(deps).reviews_of(caller.user_id)


async def my_review(deps: IdentityDeps, caller: Caller, review_id: str) -> Doc:
    """The caller's own review; someone else's is 404, exactly like one that does not exist."""
    review = await _store(deps).review(review_id)
    if review is None or review["user_id"] != caller.user_id:
        raise not_found("review")
    return review


async def reviews(deps: IdentityDeps, status: str | None, paging: Paging) -> tuple[list[Doc], int]:
    if status is not None and status not in STATUSES:
        raise validation_problem([{"field": "status", "message": f"one of {', '.join(STATUSES)}"}])
    return await _store(deps).page(status, paging.skip, paging.limit)


async def review(deps: IdentityDeps, review_id: str) -> Doc:
    doc = await _store(deps).review(review_id)
    if doc is None:
        raise not_found("review")
    return doc


async def with_real_names(deps: IdentityDeps, docs: list[Doc]) -> list[Doc]:
    """Reviews with what the buyer passed the instant check with: the name (opened here, for
    staff only: the controller's guard) and the masked ID number, to compare with the images.
    The full ID number stays sealed; staff read it off the card."""
    records = await _store(deps).real_names(sorted({d["user_id"] for d in docs}))
    shown = []
    for doc in docs:
        record = records.get(doc["user_id"]) or {}
        sealed = record.get("name")
        name = deps.box.open(sealed, context=f"real-name:{doc['user_id']}") if sealed else None
        shown.append({**doc, "real_name": name, "id_number_masked": record.get("masked")})
    return shown


async def image(deps: IdentityDeps, review_id: str, side: str) -> tuple[bytes, str]:
    """One decrypted image of a review and its media type (staff only: the controller's guard).
    410 once the retention sweep has deleted the images."""
    if side not in SIDES:
        raise not_found("document")
    store = _store(deps)
    doc = await review(deps, review_id)
    stored = None if doc.get("purged_at") else await store.image(review_id, side)
    if stored is None:
        raise Problem(410, "documents-deleted", "Gone", "the images were deleted after the retention period")
    data = deps.box.open_bytes(stored["image"], context=_context(review_id, side, doc["user_id"]))
    return data, doc["sides"][side]["media_type"]


async def approve(deps: IdentityDeps, staff: Caller, review_id: str) -> Doc:
    """Approve a pending review: its real-name record becomes documents-verified in the same
    transaction. Approving again answers the review; approving a rejected one is 409."""
    store = _store(deps)
    await _not_own(deps, staff, review_id)
    now = deps.clock()

    async def write(tx: Tx) -> Doc:
        decided = await store.decide(tx, review_id, "approved", _decision(deps, staff, now))
        if decided is None:
            return await _already_decided(deps, review_id, "approved")
        await store.mark_documents_verified(tx, decided["user_id"], review_id, now)
        return decided

    result: Doc = await deps.uow.run(write)
    return result


async def reject(deps: IdentityDeps, staff: Caller, review_id: str, reason: str) -> Doc:
    """Reject a pending review with a reason the buyer reads; the buyer may then submit again."""
    if problem := reason_problem(reason):
        raise validation_problem([{"field": "reason", "message": problem}])
    store = _store(deps)
    await _not_own(deps, staff, review_id)
    now = deps.clock()

    async def write(tx: Tx) -> Doc:
        fields = {**_decision(deps, staff, now), "reason": reason.strip()}
        decided = await store.decide(tx, review_id, "rejected", fields)
        return decided or await _already_decided(deps, review_id, "rejected")

    result: Doc = await deps.uow.run(write)
    return result


def _decision(deps: IdentityDeps, staff: Caller, now: Any) -> Doc:
    retention = timedelta(seconds=deps.settings.real_name_document_retention_seconds)
    return {"decided_at": now, "decided_by": staff.user_id, "purge_after": now + retention}


async def _not_own(deps: IdentityDeps, staff: Caller, review_id: str) -> None:
    """Staff do not decide on their own documents (404 for an unknown review)."""
    if (await review(deps, review_id))["user_id"] == staff.user_id:
        raise Problem(403, "own-review", "Forbidden", "another staff member must review your documents")


async def _already_decided(deps: IdentityDeps, review_id: str, wanted: str) -> Doc:
    """The same decision again answers the review as it is; the other one is 409."""
    doc = await review(deps, review_id)
    if doc["status"] != wanted:
        raise Problem(409, "review-decided", "Already decided", f"the review was {doc['status']} already")
    return doc


async def purge_due(deps: IdentityDeps) -> int:
    """Delete the images of reviews past their retention period (the review stays, marked
    `purged_at`), and of uploads no review names. How many reviews' images went."""
    store = _store(deps)
    now = deps.clock()
    purged = 0
    for doc in await store.due_for_purge(now):
        # Images first, then the mark: a crash in between leaves the review due, so the next
        # round deletes (nothing more) and marks it.
        await store.delete_images(doc["_id"])
        await store.mark_purged(doc["_id"], now)
        log.info("real-name documents of review %s deleted after the retention period", doc["_id"])
        purged += 1
    for review_id in await store.orphan_review_ids(now - ORPHAN_GRACE):
        await store.delete_images(review_id)
        log.info("real-name documents of unwritten review %s deleted", review_id)
    return purged


async def purge_documents(rt: Runtime) -> None:
    """The supervised background loop (ServiceSpec.background): a round every sweep interval.
    A round that fails (the database away) ends the loop; the supervisor restarts it."""
    deps = deps_from(rt)
    while True:
        await purge_due(deps)
        await asyncio.sleep(deps.settings.real_name_document_sweep_seconds)
