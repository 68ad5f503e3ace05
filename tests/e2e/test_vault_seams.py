"""The seam between the catalog and the vault (issue 12), through the gateway on the real stack:
card keys imported right after the admin created the SKU, with no sleep and no retry, are
accepted; the vault waits briefly for the SKU's projection instead of answering 404."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from deploy.platform import Platform
from shared.contracts.envelope import new_id
from tests.flows import Flows


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def import_once(flows: Flows, sku_id: str, codes: list[str]) -> tuple[int, dict[str, object]]:
    r = await flows.call(
        "POST",
        f"/api/v1/admin/skus/{sku_id}/card-keys",
        content="\n".join(codes),
        headers={**flows.admin, "content-type": "text/plain"},
    )
    return r.status_code, r.json()


async def test_keys_imported_right_after_the_sku_is_created_are_accepted(flows: Flows) -> None:
    for _ in range(3):  # a few times: the race is won or lost by milliseconds
        sku_id = await flows.create_sku()
        codes = [f"SEAM-{new_id()[:10]}-{i}" for i in range(3)]
        status, report = await import_once(flows, sku_id, codes)
        assert status == 200, report
        assert report["accepted"] == 3


async def test_an_unknown_sku_is_still_404_and_answered_at_once_the_second_time(flows: Flows) -> None:
    unknown = new_id()
    status, body = await import_once(flows, unknown, ["NOPE-1"])
    assert status == 404, body
    started = time.monotonic()
    status, _ = await import_once(flows, unknown, ["NOPE-1"])
    assert status == 404 and time.monotonic() - started < 1.0  # a made-up id costs one wait
