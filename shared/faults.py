"""Fail points: named places where a test can make a process die on purpose.

A crash mid-saga must be survivable, so tests arm a fail point in a service process through
`KAMENG_FAILPOINTS=name[,name...]` and watch the platform recover. Disabled when KAMENG_ENV=prod.
The process exits with os._exit, like a kill -9: no cleanup, no flush, no offset commit.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 86


def _armed() -> frozenset[str]:
    if os.environ.get("KAMENG_ENV") == "prod":
        return frozenset()
    return frozenset(p.strip() for p in os.environ.get("KAMENG_FAILPOINTS", "").split(",") if p.strip())


ARMED = _armed()


def fail_point(name: str) -> None:
    if name in ARMED:
        sys.stderr.write(f"fail point {name} hit: exiting\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
