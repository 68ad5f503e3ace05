"""Schemathesis against the real platform: every operation of the gateway's public OpenAPI
document, fuzzed with a buyer's and a staff member's bearer tokens; any 5xx, and any answer the
document does not describe, fails the run.

Bounded (a few derandomized examples per operation, no deadline) so the file runs in minutes on a
two-core machine; CI can raise `FUZZ_EXAMPLES` for a deeper run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from deploy.platform import Platform
from tests.helpers import token_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ALL_CHECKS = os.environ.get("FUZZ_ALL_CHECKS") == "1"
"""Every schemathesis check, `positive_data_acceptance` included: the full conformance report."""
NOT_YET = [positive_data_acceptance]
"""Left out of the gate: some schema-valid values are refused by rules the document does not yet
state (a mainland mobile number, an email address, a name's letters; issue 12). Every other check
(no 5xx, status codes and bodies as documented, content types, headers, `Allow`, negative data
refused) fails the run."""
BUYER_ID = "fuzz-buyer-0001"
STAFF_ID = "fuzz-staff-0001"

seen: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_schema(platform: Platform) -> Any:
    return schemathesis.openapi.from_url(f"{platform.gateway_url}/schema/openapi.json", timeout=30)


# Excluded on purpose, each for a reason that is not "it fails" (on the lazy schema: filters set on
# the fixture's schema are not applied by the pytest integration):
# - logout / logout-everywhere revoke the caller's sessions, so every later case of the run would
#   be a 401 and fuzz nothing;
# - card-key imports take bodies of up to megabytes of keys: generated ones only measure the
#   machine, and their parsing is covered by the vault's own tests.
schema = (
    schemathesis.pytest.from_fixture("api_schema")
    .exclude(path_regex=r"/auth/logout")
    .exclude(path_regex=r"/card-keys/?$", method="POST")
)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    print(f"\nfuzz summary: {len(seen)} operation×role, {sum(seen.values())} cases")


def _run(case: Any, base_url: str, role: str, token: str) -> None:
    seen[f"{case.operation.label} as {role}"] += 1
    headers = {"Authorization": f"Bearer {token}"}
    excluded = [] if ALL_CHECKS else NOT_YET
    case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded, timeout=30)


@schema.parametrize()
@FUZZ
def test_no_server_error_as_buyer(case: Any, platform: Platform) -> None:
    _run(case, platform.gateway_url, "buyer", token_for(BUYER_ID, roles=("buyer",)))


@schema.parametrize()
@FUZZ
def test_no_server_error_as_staff(case: Any, platform: Platform) -> None:
    _run(case, platform.gateway_url, "staff", token_for(STAFF_ID, roles=("staff",)))
