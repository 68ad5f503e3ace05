"""Pure rules of the card-key vault: reading an import file, expiry, stock views. No I/O."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# A first line that names columns is a header, not a key (spreadsheets export one).
_HEADER_WORDS = {"card", "cardno", "card_no", "code", "key", "password", "pass", "pin", "卡号", "密码", "卡密"}


class UnreadableFile(ValueError):
    """The upload is not text in an encoding we know."""


@dataclass(frozen=True)
class ParsedKey:
    line: int
    code: str
    """What the buyer receives: the trimmed line, or `card,password` with each part trimmed."""


@dataclass
class ParsedBatch:
    keys: list[ParsedKey] = field(default_factory=list)
    invalid: list[dict[str, object]] = field(default_factory=list)
    duplicate_lines: list[dict[str, object]] = field(default_factory=list)
    """Lines repeating an earlier line of the same batch: {line, reason}."""


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030: what Chinese spreadsheet tools save CSV as."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("the file is neither UTF-8 nor GB18030 text")


def _is_header(fields: list[str]) -> bool:
    return all(f.strip().lower().replace(" ", "_") in _HEADER_WORDS for f in fields if f.strip())


def parse_line(raw: str, max_length: int) -> str:
    """The key a line holds, or ValueError with the reason it is not one."""
    text = raw.strip()
    if len(text) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError("contains control characters")
    if "," not in text and '"' not in text:
        return text
    try:
        fields = next(csv.reader([text], skipinitialspace=True))
    except csv.Error as exc:
        raise ValueError(f"not a CSV line: {exc}") from exc
    fields = [f.strip() for f in fields]
    if len(fields) != 2:
        raise ValueError(f"expected card or card,password, found {len(fields)} fields")
    card, password = fields
    if not card or not password:
        raise ValueError("card,password needs both parts")
    return f"{card},{password}"


def parse_batch(text: str, *, max_length: int = 256) -> ParsedBatch:
    """One key per line, or `card,password`. Lines are numbered from 1 as an editor shows them;
    blank lines are skipped (and still counted); a header line first is skipped."""
    batch = ParsedBatch()
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not raw.strip():
            continue
        if number == 1 and _is_header(raw.split(",")):
            continue
        try:
            code = parse_line(raw, max_length)
        except ValueError as exc:
            batch.invalid.append({"line": number, "reason": str(exc)})
            continue
        earlier = first_seen.get(code)
        if earlier is not None:
            batch.duplicate_lines.append({"line": number, "reason": f"same key as line {earlier}"})
            continue
        first_seen[code] = number
        batch.keys.append(ParsedKey(number, code))
    return batch


def expiry(imported_at: datetime, validity_days: int | None) -> datetime | None:
    return imported_at + timedelta(days=validity_days) if validity_days else None
