"""A simulated direct top-up supplier (直充 upstream), for `make dev` and the tests only.

    POST /topups        {request_id, account, amount_cents, callback_url} -> 202 {request_id, supplier_ref, status}
    GET  /topups/{id}   -> {request_id, supplier_ref, status: processing|succeeded|failed, reason}

A request id is processed once: repeating it returns the first answer (suppliers are idempotent
per request id, and fulfilment relies on that when it retries after a network error). After
SUPPLIER_LATENCY_MS the outcome is posted to `callback_url`, signed with SUPPLIER_SECRET
(header X-Supplier-Signature: hex HMAC-SHA256 of the body).

Behaviour is configurable by environment and, for deterministic tests, by the account number:
- SUPPLIER_FAILURE_RATE (0..1): share of top-ups that fail.
- SUPPLIER_CALLBACK_LOSS_RATE (0..1): share of callbacks never sent (fulfilment must poll).
- an account containing "fail" always fails; one containing "lost" never gets a callback;
  one containing "slow" takes 10x the latency.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, get, post
from litestar.params import JSONBody

from services.fulfilment.settings import DEV_SUPPLIER_SECRET
from shared.errors import EXCEPTION_HANDLERS, not_found

log = logging.getLogger("suppliersim")


class TopupRequest(msgspec.Struct, kw_only=True):
    request_id: str
    account: str
    amount_cents: int
    callback_url: str


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Supplier:
    def __init__(self) -> None:
        self.secret = os.environ.get("SUPPLIER_SECRET", DEV_SUPPLIER_SECRET)
        self.latency = float(os.environ.get("SUPPLIER_LATENCY_MS", "200")) / 1000
        self.failure_rate = float(os.environ.get("SUPPLIER_FAILURE_RATE", "0"))
        self.loss_rate = float(os.environ.get("SUPPLIER_CALLBACK_LOSS_RATE", "0"))
        self.requests: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, req: TopupRequest) -> dict[str, Any]:
        existing = self.requests.get(req.request_id)
        if existing is not None:
            return existing
        record = {
            "request_id": req.request_id,
            "supplier_ref": f"SUP{len(self.requests) + 1:08d}",
            "status": "processing",
            "reason": None,
            "account": req.account,
            "amount_cents": req.amount_cents,
        }
        self.requests[req.request_id] = record
        task = asyncio.create_task(self._process(record, req.callback_url))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return record

    async def _process(self, record: dict[str, Any], callback_url: str) -> None:
        account = record["account"]
        await asyncio.sleep(self.latency * (10 if "slow" in account else 1))
        if "fail" in account or random.random() < self.failure_rate:
            record.update(status="failed", reason="the carrier rejected the top-up")
        else:
            record["status"] = "succeeded"
        if "lost" in account or random.random() < self.loss_rate:
            log.info("dropping the callback of %s on purpose", record["request_id"])
            return
        body = json.dumps({k: record[k] for k in ("request_id", "supplier_ref", "status", "reason")}).encode()
        headers = {"content-type": "application/json", "x-supplier-signature": sign(self.secret, body)}
        for attempt in range(5):
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.post(callback_url, content=body, headers=headers)
                if response.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.warning("callback to %s failed: %r", callback_url, exc)
            await asyncio.sleep(0.5 * 2**attempt)


def create_app() -> Litestar:
    supplier = Supplier()

    @post("/topups", status_code=202)
    async def submit(data: JSONBody[TopupRequest]) -> dict[str, Any]:
        record = supplier.submit(data)
        return {k: record[k] for k in ("request_id", "supplier_ref", "status")}

    @get("/topups/{request_id:str}")
    async def query(request_id: str) -> dict[str, Any]:
        record = supplier.requests.get(request_id)
        if record is None:
            raise not_found("top-up request")
        return {k: record[k] for k in ("request_id", "supplier_ref", "status", "reason")}

    @get(["/health/live", "/health/ready"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([submit, query, health], exception_handlers=EXCEPTION_HANDLERS)


def main() -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)-5s suppliersim %(message)s")
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8010")),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
