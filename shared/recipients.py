"""The one recipient rule: what a buyer typed for a SKU's recipient fields (mobile, game id, ...),
checked against the SKU's field definitions, and the notes the 信息预览 shows next to it.

Pure, no I/O. The catalog checks the field definitions themselves when a SKU is saved; the order
service checks the buyer's values with `validate_recipient` at quote, order and batch time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class FieldRule(Protocol):
    """What a recipient field definition has (`shared.contracts.catalog.RecipientField`)."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def min_length(self) -> int | None: ...
    @property
    def max_length(self) -> int | None: ...


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def validate_recipient(
    fields: Sequence[FieldRule], given: Mapping[str, object]
) -> tuple[dict[str, str], list[FieldError]]:
    """The cleaned recipient (only the SKU's fields, trimmed) and what is wrong with it."""
    errors: list[FieldError] = []
    clean: dict[str, str] = {}
    known = {f.name for f in fields}
    for name in given:
        if name not in known:
            errors.append(FieldError(f"recipient.{name}", "this product does not take this field"))
    for f in fields:
        raw = given.get(f.name)
        where = f"recipient.{f.name}"
        if raw is not None and not isinstance(raw, str):
            errors.append(FieldError(where, "must be text"))
            continue
        value = raw.strip() if isinstance(raw, str) else ""
        if not value:
            if f.required:
                errors.append(FieldError(where, f"{f.label} is required"))
            continue
        if f.min_length is not None and len(value) < f.min_length:
            errors.append(FieldError(where, f"{f.label} must have at least {f.min_length} characters"))
        elif f.max_length is not None and len(value) > f.max_length:
            errors.append(FieldError(where, f"{f.label} must have at most {f.max_length} characters"))
        elif f.pattern is not None and not re.fullmatch(f.pattern, value):
            errors.append(FieldError(where, f"{f.label} is not in the expected format"))
        else:
            clean[f.name] = value
    return clean, errors


MOBILE = re.compile(r"^1[3-9]\d{9}$")
# Mainland number segments by carrier (2024 allocations; 虚拟运营商 162/165/170/171 shown as virtual).
_CARRIERS: dict[str, tuple[str, ...]] = {
    "中国移动": (
        "134", "135", "136", "137", "138", "139", "147", "148", "150", "151", "152", "157",
        "158", "159", "172", "178", "182", "183", "184", "187", "188", "195", "197", "198",
    ),
    "中国联通": ("130", "131", "132", "145", "146", "155", "156", "166", "167", "175", "176", "185", "186", "196"),
    "中国电信": ("133", "149", "153", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199"),
    "中国广电": ("192",),
    "虚拟运营商": ("162", "165", "170", "171"),
}  # fmt: skip


def carrier_of(mobile: str) -> str | None:
    """中国移动 / 中国联通 / ... for a mainland mobile number, None for anything else."""
    if not MOBILE.match(mobile):
        return None
    return next((name for name, prefixes in _CARRIERS.items() if mobile[:3] in prefixes), None)


def recipient_notes(recipient: Mapping[str, str]) -> dict[str, str]:
    """What the preview shows next to the recipient (信息预览): e.g. the mobile number's carrier."""
    notes: dict[str, str] = {}
    for name, value in recipient.items():
        carrier = carrier_of(value)
        if carrier is not None:
            notes[f"{name}.carrier"] = carrier
    return notes
