"""Pure rules of real-name documents (上传手持证件照片): which parts a submission has, what an
acceptable image is, and the review's lifecycle."""

from __future__ import annotations

SIDES: tuple[str, ...] = ("front", "back", "selfie")
"""The ID card's front, its back, and a selfie holding it: every submission has all three."""

STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")
"""A review moves pending -> approved | rejected once (a guarded update in the store)."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def image_type(data: bytes) -> str | None:
    """The media type of a JPEG or PNG image, read from its magic bytes (never from the client's
    Content-Type or file name, which anyone can set); None for anything else."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def part_problems(parts: dict[str, bytes | None], *, max_bytes: int) -> tuple[list[dict[str, str]], bool]:
    """Every problem of a submission, one per side, and whether one is a file over the limit
    (the answer is then 413 rather than 422). `parts` maps each side to its bytes (None: missing)."""
    errors: list[dict[str, str]] = []
    too_large = False
    for side in SIDES:
        data = parts.get(side)
        if data is None or not data:
            errors.append({"field": side, "message": "a JPEG or PNG image is required"})
        elif len(data) > max_bytes:
            too_large = True
            errors.append({"field": side, "message": f"at most {max_bytes} bytes (this one has {len(data)})"})
        elif image_type(data) is None:
            errors.append({"field": side, "message": "not a JPEG or PNG image"})
    return errors, too_large


def reason_problem(reason: str) -> str | None:
    """A rejection must tell the buyer what to fix."""
    if not reason.strip():
        return "say why, so the buyer knows what to fix"
    return None
