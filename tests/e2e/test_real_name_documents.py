"""Real-name documents (上传手持证件照片, issue 14) end to end on the real stack, through the
gateway: the instant check comes first; a buyer uploads the ID card's front, back and a selfie;
staff see the pending review and read the images back byte for byte; a rejection's reason reaches
the buyer, who submits again and is approved. Bad files are refused naming the part, a second
submission while one is pending is 409, another buyer's review is 404 and the staff endpoints are
403 for buyers. The images are sealed at rest and deleted after the retention period (4 s here,
tests/conftest.py) while the review stays."""

from __future__ import annotations

import os
import random
from typing import Any

import httpx
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from tests.e2e import identity_kit as kit
from tests.e2e.identity_kit import assert_problem, id_number, new_account
from tests.helpers import auth, wait_until

gateway = kit.gateway
identity_db = kit.identity_db

STAFF = auth("real-name-staff", roles=("staff",))
DOCS = "/api/v1/me/real-name/documents"
REVIEWS = "/api/v1/admin/real-name/reviews"


def jpeg(size: int = 20_000) -> bytes:
    """Bytes that pass as a JPEG (magic bytes), random after them so each is unique."""
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def png(size: int = 20_000) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8)


def upload(gateway: httpx.Client, headers: dict[str, str], **files: bytes) -> httpx.Response:
    parts = {side: (f"{side}.bin", data, "image/jpeg") for side, data in files.items()}
    return gateway.post(DOCS, files=parts, headers=headers, timeout=60)


def verified_buyer(gateway: httpx.Client) -> tuple[str, dict[str, str]]:
    """A new account that passed the instant check (a random birth date keeps ID numbers apart)."""
    user_id, _, headers = new_account(gateway)
    birth = f"19{random.randint(60, 99)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
    r = gateway.post("/api/v1/me/real-name", json={"name": "王小明", "id_number": id_number(birth)}, headers=headers)
    assert r.status_code == 200, r.text
    return user_id, headers


def raw_identity_records(identity_db: Any) -> bytes:
    """Every stored byte of the document reviews and images, as BSON (nothing decoded)."""
    raw = b""
    for name in ("real_name_documents", "real_name_reviews"):
        coll = identity_db.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
        raw += b"".join(doc.raw for doc in coll.find())
    return raw


def test_documents_are_checked_reviewed_and_deleted_after_retention(gateway: httpx.Client, identity_db: Any) -> None:
    # The instant checksum check stays first: no documents from an account it has not verified.
    _, _, unverified = new_account(gateway)
    assert_problem(upload(gateway, unverified, front=jpeg(), back=jpeg(), selfie=png()), 409, "real-name-required")

    user_id, buyer = verified_buyer(gateway)

    # Size and type limits, each naming the part: a 6 MB selfie, a text file, a missing part.
    problem = assert_problem(
        upload(gateway, buyer, front=jpeg(), back=jpeg(), selfie=jpeg(6 * 1024 * 1024)), 413, "payload-too-large"
    )
    assert [e["field"] for e in problem["errors"]] == ["selfie"]
    problem = assert_problem(upload(gateway, buyer, front=b"just some text\n", back=jpeg(), selfie=png()), 422)
    assert [e["field"] for e in problem["errors"]] == ["front"]
    problem = assert_problem(upload(gateway, buyer, front=jpeg(), selfie=png()), 422)
    assert [e["field"] for e in problem["errors"]] == ["back"]
    assert gateway.get(DOCS, headers=buyer).json()["items"] == []

    # Upload: 202 pending; a second submission while it is pending is 409.
    first = {"front": jpeg(), "back": jpeg(), "selfie": png()}
    r = upload(gateway, buyer, **first)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    review_id = r.json()["review_id"]
    assert_problem(upload(gateway, buyer, front=jpeg(), back=jpeg(), selfie=png()), 409, "review-pending")
    mine = gateway.get(f"{DOCS}/{review_id}", headers=buyer).json()
    assert mine["status"] == "pending" and mine["reason"] is None and mine["documents_verified"] is False

    # Another buyer cannot see it (404, as if it did not exist), nor reach the staff endpoints (403).
    _, other = verified_buyer(gateway)
    assert_problem(gateway.get(f"{DOCS}/{review_id}", headers=other), 404)
    assert_problem(gateway.get(REVIEWS, headers=buyer), 403)
    assert_problem(gateway.get(f"{REVIEWS}/{review_id}/front", headers=buyer), 403)
    assert_problem(gateway.post(f"{REVIEWS}/{review_id}/approve", headers=buyer), 403)
    assert_problem(gateway.post(f"{REVIEWS}/{review_id}/reject", json={"reason": "x"}, headers=other), 403)

    # Staff see it in the pending queue and read each image back byte for byte.
    pending = gateway.get(REVIEWS, params={"status": "pending", "page_size": 200}, headers=STAFF).json()
    listed = next(i for i in pending["items"] if i["review_id"] == review_id)
    assert listed["user_id"] == user_id and listed["images_available"] is True
    # With what the account passed the instant check with, to compare with the card: the name,
    # and the ID number masked (the full number stays sealed).
    assert listed["real_name"] == "王小明"
    masked = listed["id_number_masked"]
    assert len(masked) == 18 and "*" in masked
    assert masked == gateway.get("/api/v1/me", headers=buyer).json()["id_number_masked"]
    assert listed["sides"]["selfie"] == {"media_type": "image/png", "size": len(first["selfie"])}
    for side, data in first.items():
        r = gateway.get(f"{REVIEWS}/{review_id}/{side}", headers=STAFF)
        assert r.status_code == 200, r.text
        assert r.content == data
        assert r.headers["content-type"] == ("image/png" if side == "selfie" else "image/jpeg")
        assert r.headers["cache-control"] == "no-store"
    assert_problem(gateway.get(f"{REVIEWS}/{review_id}/passport", headers=STAFF), 404)
    assert_problem(gateway.get(REVIEWS, params={"status": "maybe"}, headers=STAFF), 422)

    # Sealed at rest: not one image's bytes (nor a slice of them) are in identity's database.
    raw = raw_identity_records(identity_db)
    assert identity_db.real_name_documents.count_documents({"review_id": review_id}) == 3
    for data in first.values():
        assert data[64:1064] not in raw

    # Reject: a reason is required, and the buyer reads it.
    assert_problem(gateway.post(f"{REVIEWS}/{review_id}/reject", json={"reason": "  "}, headers=STAFF), 422)
    reason = "照片模糊，请重新拍摄手持证件照"
    r = gateway.post(f"{REVIEWS}/{review_id}/reject", json={"reason": reason}, headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert_problem(gateway.post(f"{REVIEWS}/{review_id}/approve", headers=STAFF), 409, "review-decided")
    mine = gateway.get(DOCS, headers=buyer).json()["items"]
    assert [(m["review_id"], m["status"], m["reason"]) for m in mine] == [(review_id, "rejected", reason)]

    # Submit again, approved: the buyer's documents are verified, and no further submission.
    r = upload(gateway, buyer, front=png(), back=png(), selfie=jpeg())
    assert r.status_code == 202, r.text
    second_id = r.json()["review_id"]
    r = gateway.post(f"{REVIEWS}/{second_id}/approve", headers=STAFF)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    assert gateway.post(f"{REVIEWS}/{second_id}/approve", headers=STAFF).status_code == 200  # same decision again
    mine = gateway.get(f"{DOCS}/{second_id}", headers=buyer).json()
    assert mine["status"] == "approved" and mine["documents_verified"] is True
    assert gateway.get("/api/v1/me", headers=buyer).json()["real_name_verified"] is True
    assert_problem(upload(gateway, buyer, front=jpeg(), back=jpeg(), selfie=png()), 409, "documents-approved")

    # After the retention period the images are gone and the reviews stay.
    def purged() -> bool:
        return all(
            (doc := identity_db.real_name_reviews.find_one({"_id": rid})) is not None and "purged_at" in doc
            for rid in (review_id, second_id)
        )

    wait_until(purged, timeout=30, message="both reviews' images deleted")
    assert identity_db.real_name_documents.count_documents({"review_id": {"$in": [review_id, second_id]}}) == 0
    assert_problem(gateway.get(f"{REVIEWS}/{review_id}/front", headers=STAFF), 410, "documents-deleted")
    kept = gateway.get(f"{REVIEWS}/{review_id}", headers=STAFF).json()
    assert kept["status"] == "rejected" and kept["reason"] == reason and kept["images_available"] is False
    mine = gateway.get(DOCS, headers=buyer).json()["items"]
    assert [(m["review_id"], m["status"]) for m in mine] == [(second_id, "approved"), (review_id, "rejected")]
