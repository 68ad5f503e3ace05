"""The catalog service's HTTP API (served under the public paths, reached through the gateway)."""

from __future__ import annotations

from typing import Any

CONTROLLERS: list[Any] = []
