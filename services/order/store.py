"""The order service's MongoDB collections and indexes (database `kameng_order`)."""

from __future__ import annotations

from shared.mongo import Index

INDEXES: list[Index] = []
