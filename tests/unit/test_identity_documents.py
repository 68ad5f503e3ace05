"""Real-name documents: the pure rules (which parts, what an image is) and sealing image bytes."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from services.identity.documents_domain import image_type, part_problems, reason_problem
from services.identity.secrets import DEV_SECRETS_KEY, SecretBox

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def test_image_type_reads_magic_bytes_only() -> None:
    assert image_type(JPEG) == "image/jpeg"
    assert image_type(PNG) == "image/png"
    assert image_type(b"GIF89a....") is None
    assert image_type(b"hello, a text file") is None
    assert image_type(b"") is None


def test_part_problems_name_each_bad_part() -> None:
    ok = {"front": JPEG, "back": JPEG, "selfie": PNG}
    assert part_problems(ok, max_bytes=1000) == ([], False)
    errors, too_large = part_problems({**ok, "selfie": PNG + b"\x00" * 1000}, max_bytes=1000)
    assert [e["field"] for e in errors] == ["selfie"] and too_large
    errors, too_large = part_problems({**ok, "front": b"text"}, max_bytes=1000)
    assert [e["field"] for e in errors] == ["front"] and not too_large
    errors, _ = part_problems({"front": JPEG, "back": None, "selfie": b""}, max_bytes=1000)
    assert [e["field"] for e in errors] == ["back", "selfie"]


def test_a_rejection_needs_a_reason() -> None:
    assert reason_problem("  ")
    assert reason_problem("照片模糊") is None


def test_sealed_bytes_open_only_in_their_context() -> None:
    box = SecretBox(DEV_SECRETS_KEY)
    sealed = box.seal_bytes(JPEG, context="real-name-document:r1:front:u1")
    assert JPEG[4:50] not in bytes(sealed["ct"])  # type: ignore[call-overload]
    assert box.open_bytes(sealed, context="real-name-document:r1:front:u1") == JPEG
    with pytest.raises(InvalidTag):
        box.open_bytes(sealed, context="real-name-document:r1:back:u1")
