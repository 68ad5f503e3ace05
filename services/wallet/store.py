"""The wallet service's MongoDB collections and indexes (database `kameng_wallet`)."""

from __future__ import annotations

from shared.mongo import Index

INDEXES: list[Index] = []
