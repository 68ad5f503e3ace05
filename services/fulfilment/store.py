"""The fulfilment service's MongoDB collections and indexes (database `kameng_fulfilment`)."""

from __future__ import annotations

from shared.mongo import Index

INDEXES: list[Index] = []
