"""Pure rules of fulfilment, no I/O: the lifecycles of deliveries, card keys and manual tasks
(transition tables the store's guarded updates use), reading an import file, expiry."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.transitions import Transitions

MANUAL_ESTIMATE_MINUTES = 180  # what buyers are told: manual orders take 1-5 hours


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# One delivery per paid order (its `_id` is the order id). A buyer's cancel before anything went
# out ends it `failed` (the order is refunded), like any other failure.
DELIVERY: Transitions[DeliveryStatus] = Transitions(
    {
        # auto and manual close from pending; direct is sent to the supplier first
        DeliveryStatus.PENDING: {DeliveryStatus.SUBMITTED, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED},
        # a definite supplier failure with attempts left goes back to pending for a new request id
        DeliveryStatus.SUBMITTED: {DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED},
        DeliveryStatus.SUCCEEDED: set(),
        DeliveryStatus.FAILED: set(),
    }
)


class KeyStatus(StrEnum):
    AVAILABLE = "available"
    SOLD = "sold"
    DISABLED = "disabled"


CARD_KEY: Transitions[KeyStatus] = Transitions(
    {
        # an import job's keys are written `available` but are not for sale while their job is
        # unsettled (queued or running: `UNSETTLED_JOBS`); a failed job deletes them
        KeyStatus.AVAILABLE: {KeyStatus.SOLD, KeyStatus.DISABLED},
        # only inside the claiming transaction: a short claim puts back what it took
        KeyStatus.SOLD: {KeyStatus.AVAILABLE},
        KeyStatus.DISABLED: set(),
    }
)


class TaskStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


MANUAL_TASK: Transitions[TaskStatus] = Transitions(
    {
        TaskStatus.PENDING: {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED},
        TaskStatus.COMPLETED: set(),
        TaskStatus.FAILED: set(),
        TaskStatus.CANCELLED: set(),
    }
)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# A large card-key import, run by the background worker. `running` may be claimed again when its
# lease has run out (the worker that held it died): it resumes from its last committed chunk.
IMPORT_JOB: Transitions[ImportStatus] = Transitions(
    {
        ImportStatus.QUEUED: {ImportStatus.RUNNING, ImportStatus.FAILED},
        ImportStatus.RUNNING: {ImportStatus.RUNNING, ImportStatus.SUCCEEDED, ImportStatus.FAILED},
        ImportStatus.SUCCEEDED: set(),
        ImportStatus.FAILED: set(),
    }
)
# A job in these states holds its batch's keys back from sale: its success releases them at once.
UNSETTLED_JOBS: list[str] = [ImportStatus.QUEUED.value, ImportStatus.RUNNING.value]

MAX_REPORTED_LINES = 1000
"""A job reports its first 1,000 invalid lines (and counts them all)."""


def recipient_account(recipient: dict[str, str]) -> str:
    """The account a direct top-up goes to: the mobile number or game account the buyer entered."""
    for name in ("mobile", "phone", "account", "game_id"):
        if recipient.get(name):
            return recipient[name]
    return next(iter(recipient.values()), "")


def direct_request_id(order_id: str, attempt: int) -> str:
    """Attempt n of an order's top-up; a network error repeats the same id, a definite failure
    starts the next attempt with a new one."""
    return f"{order_id}.{attempt}"


def order_of_request(request_id: str) -> str:
    return request_id.rsplit(".", 1)[0]


def reissue_claim_id(order_id: str, ticket_id: str) -> str:
    """Replacement keys are claimed under their own id, so the order's first claim stays as it was."""
    return f"{order_id}.reissue.{ticket_id}"


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


ENCODINGS = ("utf-8-sig", "gb18030")
"""What an import file may be in, tried in this order: UTF-8 (BOM or not), else GB18030."""


class LineReader:
    """Lines of a file fed as byte chunks, numbered as `parse_batch` numbers them (from 1, blank
    lines counted): only one chunk and one unfinished line are held at a time."""

    def __init__(self, encoding: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._pending = ""
        self._number = 0

    def _numbered(self, lines: list[str]) -> list[tuple[int, str]]:
        out = []
        for line in lines:
            self._number += 1
            out.append((self._number, line.rstrip("\r\n")))
        return out

    def feed(self, chunk: bytes) -> list[tuple[int, str]]:
        """UnicodeDecodeError when the bytes are not in this encoding."""
        lines = (self._pending + self._decoder.decode(chunk)).splitlines(keepends=True)
        self._pending = ""
        # an unfinished last line waits for the next chunk, and so does a final "\r" (half of "\r\n"?)
        if lines and (lines[-1].endswith("\r") or not lines[-1].endswith("\n")):
            self._pending = lines.pop()
        return self._numbered(lines)

    def finish(self) -> list[tuple[int, str]]:
        return self._numbered((self._pending + self._decoder.decode(b"", final=True)).splitlines())


def stream_lines(chunks: Iterable[bytes], encoding: str) -> Iterator[tuple[int, str]]:
    reader = LineReader(encoding)
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.finish()


def decodes_as(encoding: str) -> Callable[[bytes, bool], object]:
    """A checker fed chunk by chunk (`check(chunk, final)`), raising UnicodeDecodeError."""
    decoder = codecs.getincrementaldecoder(encoding)()
    return lambda chunk, final: decoder.decode(chunk, final)


def detect_encoding(chunks: Iterable[bytes]) -> str:
    """The first of `ENCODINGS` the whole stream decodes in (read chunk by chunk)."""
    for encoding in ENCODINGS:
        check = decodes_as(encoding)
        try:
            for chunk in chunks:
                check(chunk, False)
            check(b"", True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise UnreadableFile("the file is neither UTF-8 nor GB18030 text")


@dataclass
class LineVerdict:
    """What one line of an import file is: a key, a repeat of an earlier line, or invalid."""

    line: int
    code: str | None = None
    duplicate_of: int | None = None
    reason: str | None = None


class LineJudge:
    """`parse_batch`'s rules line by line, for files read as a stream: the header, blank lines,
    invalid lines and repeats within the file (remembered by a short digest of each key, so 100,000
    keys cost a few MB, not the file)."""

    def __init__(self, max_length: int = 256) -> None:
        self.max_length = max_length
        self._seen: dict[bytes, int] = {}

    def judge(self, number: int, raw: str) -> LineVerdict | None:
        """None for a line that holds nothing (blank, the header)."""
        if not raw.strip():
            return None
        if number == 1 and _is_header(raw.removeprefix("\ufeff").split(",")):
            return None
        try:
            code = parse_line(raw.removeprefix("\ufeff") if number == 1 else raw, self.max_length)
        except ValueError as exc:
            return LineVerdict(number, reason=str(exc))
        digest = hashlib.blake2b(code.encode(), digest_size=12).digest()
        earlier = self._seen.setdefault(digest, number)
        if earlier != number:
            return LineVerdict(number, duplicate_of=earlier)
        return LineVerdict(number, code=code)


def expiry(imported_at: datetime, validity_days: int | None) -> datetime | None:
    return imported_at + timedelta(days=validity_days) if validity_days else None
