"""The support service's MongoDB collections and indexes (database `kameng_support`)."""

from __future__ import annotations

from shared.mongo import Index

INDEXES: list[Index] = []
