"""The msgspec request and response structs of the fulfilment HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

# -- the vault (admin) ----------------------------------------------------------------------------


class LineIssue(msgspec.Struct, frozen=True):
    line: int
    reason: str


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicates: int
    invalid: list[LineIssue]
    duplicate_lines: list[LineIssue]
    """Which lines were duplicates and why (an earlier line of the batch, or already in the vault)."""
    batch_id: str | None
    """None when nothing was accepted (nothing was stored)."""
    available: int


class ImportJobAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """A large import was queued: follow it at `status_url`."""

    job_id: str
    status_url: str


class ImportJobView(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    sku_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    total: int | None
    """Lines holding something (keys, repeats, invalid lines); null until the file has been read."""
    processed: int
    accepted: int
    duplicates: int
    invalid: list[LineIssue]
    """The first 1,000 invalid lines; any invalid line fails the whole job."""
    invalid_count: int
    batch_id: str | None
    """The batch the keys belong to; null when the job failed or found nothing new."""
    reason: str | None = None
    """Why a job failed."""
    created_at: datetime
    finished_at: datetime | None = None


class BatchView(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    sku_id: str
    count: int
    """Keys the batch brought into the vault."""
    sold: int
    disabled: int
    imported_by: str
    imported_at: datetime
    source: str
    job_id: str | None = None
    disabled_at: datetime | None = None


class BatchDisabled(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    disabled: int
    """Keys this request took out of sale (0 when repeated: the batch was disabled already)."""
    sold: int
    """Keys of the batch already delivered: they stay with their orders."""


class StockView(msgspec.Struct, frozen=True, kw_only=True):
    sku_id: str
    available: int
    """Usable keys in the vault (MongoDB truth: not sold, not disabled, not expired)."""
    reserved: int
    """Units held by open orders (Redis, kept by the order service)."""
    sold: int
    disabled: int
    expired: int
    supply: int
    """The Redis supply counter the order service sells against (equals `available` when in sync)."""
    sellable: int


class KeyView(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    status: str
    batch_id: str
    line: int
    vault_key_id: str
    imported_at: datetime
    expires_at: datetime | None
    order_id: str | None = None
    sold_at: datetime | None = None
    disabled_at: datetime | None = None


class DisableCodes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    codes: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=512)]], msgspec.Meta(min_length=1, max_length=1000)
    ]


class DisableCodesResult(msgspec.Struct, frozen=True, kw_only=True):
    """Positions (0-based) in the request's `codes`, per outcome."""

    disabled: list[int]
    already_disabled: list[int]
    sold: list[int]
    not_found: list[int]


class DisableResult(msgspec.Struct, frozen=True):
    key_id: str
    status: str


# -- the manual queue (staff) ---------------------------------------------------------------------


class TaskView(msgspec.Struct, kw_only=True):
    task_id: str
    order_id: str
    status: str
    sku_id: str
    quantity: int
    recipient: dict[str, str]
    created_at: datetime
    urged: bool = False
    completed_by: str | None = None
    completed_at: datetime | None = None
    reason: str | None = None


class CompleteTask(msgspec.Struct, kw_only=True):
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=10000)]


class FailTask(msgspec.Struct, kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


# -- what a buyer sees ----------------------------------------------------------------------------


class CardKey(msgspec.Struct, kw_only=True):
    code: str
    expires_at: datetime | None = None


class CardKeys(msgspec.Struct, kw_only=True):
    order_id: str
    status: str
    card_keys: list[CardKey]
    revealed_at: datetime | None = None
    """When the owner first saw these keys (待使用 until then)."""
