"""Identity's MongoDB calls for real-name documents (上传手持证件照片):

    real_name_reviews    {_id, user_id, status: pending | approved | rejected,
                          open_for (= user_id while pending, unset after), sides: {side: {media_type, size}},
                          created_at, decided_at, decided_by, reason, purge_after, purged_at}
    real_name_documents  {_id: "<review_id>:<side>", review_id, side, image: {kid, ct}, created_at}

The images sit in their own collection, one record per side, so a review record never nears
MongoDB's 16 MB document limit and the sweep can delete the bytes while the review stays.
`open_for` is unique (sparse): a buyer has at most one pending review, also when two uploads race."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument

from services.identity.store import USERS
from shared.messaging.outbox import Tx
from shared.mongo import Index

REVIEWS = "real_name_reviews"
DOCUMENTS = "real_name_documents"
DOCUMENT_INDEXES: list[Index] = [
    Index(REVIEWS, [("open_for", 1)], {"unique": True, "sparse": True}),
    Index(REVIEWS, [("status", 1), ("created_at", -1)]),
    Index(REVIEWS, [("user_id", 1), ("created_at", -1)]),
    Index(REVIEWS, [("purge_after", 1)], {"sparse": True}),
    Index(DOCUMENTS, [("review_id", 1)]),
    Index(DOCUMENTS, [("created_at", 1)]),
]

Doc = dict[str, Any]


class DocumentStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    async def real_name_of(self, user_id: str) -> Doc | None:
        """The account with only when it passed the instant check and had its documents approved;
        None without the account."""
        projection = {"real_name.verified_at": 1, "real_name.documents_verified_at": 1}
        doc: Doc | None = await self.db[USERS].find_one({"_id": user_id}, projection)
        return doc

    async def real_names(self, user_ids: list[str]) -> dict[str, Doc]:
        """user id -> its real-name record's sealed name and masked ID number (what staff compare
        with the images of a review); accounts without one are left out."""
        projection = {"real_name.name": 1, "real_name.masked": 1}
        cursor = self.db[USERS].find({"_id": {"$in": user_ids}, "real_name": {"$exists": True}}, projection)
        return {str(d["_id"]): d["real_name"] async for d in cursor}

    async def put_images(self, review_id: str, images: dict[str, Doc], at: datetime) -> None:
        """Store a submission's sealed images (before its review: see `usecases.documents`).
        Idempotent per (review, side)."""
        for side, image in images.items():
            await self.db[DOCUMENTS].replace_one(
                {"_id": f"{review_id}:{side}"},
                {"review_id": review_id, "side": side, "image": image, "created_at": at},
                upsert=True,
            )

    async def image(self, review_id: str, side: str) -> Doc | None:
        doc: Doc | None = await self.db[DOCUMENTS].find_one({"_id": f"{review_id}:{side}"})
        return doc

    async def delete_images(self, review_id: str) -> int:
        result = await self.db[DOCUMENTS].delete_many({"review_id": review_id})
        return result.deleted_count

    async def add_review(self, doc: Doc) -> None:
        """DuplicateKeyError when the buyer has a pending review already."""
        await self.db[REVIEWS].insert_one({**doc, "open_for": doc["user_id"]})

    async def pending_of(self, user_id: str) -> Doc | None:
        doc: Doc | None = await self.db[REVIEWS].find_one({"open_for": user_id})
        return doc

    async def review(self, review_id: str) -> Doc | None:
        doc: Doc | None = await self.db[REVIEWS].find_one({"_id": review_id})
        return doc

    async def reviews_of(self, user_id: str, limit: int = 20) -> list[Doc]:
        cursor = self.db[REVIEWS].find({"user_id": user_id}).sort([("created_at", -1), ("_id", 1)]).limit(limit)
        return [d async for d in cursor]

    async def page(self, status: str | None, skip: int, limit: int) -> tuple[list[Doc], int]:
        query: Doc = {"status": status} if status else {}
        # Pending ones oldest first (the queue staff work through); decided ones newest first.
        order = 1 if status == "pending" else -1
        cursor = self.db[REVIEWS].find(query).sort([("created_at", order), ("_id", 1)]).skip(skip).limit(limit)
        return [d async for d in cursor], await self.db[REVIEWS].count_documents(query)

    async def decide(self, tx: Tx, review_id: str, status: str, fields: Doc) -> Doc | None:
        """Pending -> `status`, once: the review after, None when it was not pending."""
        doc: Doc | None = await tx.db[REVIEWS].find_one_and_update(
            {"_id": review_id, "status": "pending"},
            {"$set": {"status": status, **fields}, "$unset": {"open_for": ""}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def mark_documents_verified(self, tx: Tx, user_id: str, review_id: str, at: datetime) -> None:
        """Record on the real-name record that staff approved this person's documents."""
        await tx.db[USERS].update_one(
            {"_id": user_id, "real_name": {"$exists": True}},
            {"$set": {"real_name.documents_review_id": review_id, "real_name.documents_verified_at": at}},
            session=tx.session,
        )

    async def due_for_purge(self, now: datetime, limit: int = 100) -> list[Doc]:
        """Decided reviews whose retention period has passed and whose images are still kept."""
        cursor = self.db[REVIEWS].find({"purge_after": {"$lte": now}, "purged_at": {"$exists": False}}).limit(limit)
        return [d async for d in cursor]

    async def mark_purged(self, review_id: str, at: datetime) -> None:
        await self.db[REVIEWS].update_one({"_id": review_id}, {"$set": {"purged_at": at}})

    async def orphan_review_ids(self, before: datetime, limit: int = 100) -> list[str]:
        """Review ids of images stored before `before` that no review names: an upload whose
        review was never written (a crash in between, or the buyer's pending-review 409)."""
        pipeline: list[Doc] = [
            {"$match": {"created_at": {"$lt": before}}},
            {"$group": {"_id": "$review_id"}},
            {"$lookup": {"from": REVIEWS, "localField": "_id", "foreignField": "_id", "as": "review"}},
            {"$match": {"review": {"$size": 0}}},
            {"$limit": limit},
        ]
        return [d["_id"] async for d in self.db[DOCUMENTS].aggregate(pipeline)]
