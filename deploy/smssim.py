"""A simulated SMS gateway for dev and tests (`python -m deploy.smssim`): accepts every text
message and keeps it, so nothing reaches a real phone and tests can read what the platform sent.

- `POST /api/sms` (the provider API identity calls; `Authorization: Bearer $SMS_GATEWAY_TOKEN`):
  `{phone, sign_name, template, text, out_id}` -> 200 `{message_id, status: "accepted"}`.
  The same `out_id` twice is accepted again (a sender retrying after a lost answer) and kept once.
- `GET /messages?phone=<number>` (newest last), `DELETE /messages`, `/health/live`, `/health/ready`.
- `SMSSIM_FAIL_RATE` (0..1): refuse that share of messages with 503, to exercise retries.

Dev and test only: state is in memory, the token is a dev value.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from litestar import Litestar, Request, Response, delete, get, post
from litestar.params import QueryParameter

DEV_TOKEN = "dev-only-sms-token"  # noqa: S105 - the dev default, as in services/identity/settings.py


def problem(status: int, detail: str) -> Response[dict[str, Any]]:
    return Response(
        {"type": "about:blank", "title": "SMS gateway error", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(token: str = DEV_TOKEN, fail_rate: float = 0.0) -> Litestar:
    messages: list[dict[str, Any]] = []
    by_out_id: dict[str, dict[str, Any]] = {}

    @post("/api/sms", status_code=200)
    async def send(request: Request[Any, Any, Any], data: dict[str, Any]) -> Response[dict[str, Any]]:
        if request.headers.get("authorization", "") != f"Bearer {token}":
            return problem(401, "bad or missing token")
        phone, text = data.get("phone"), data.get("text")
        if not isinstance(phone, str) or not phone or not isinstance(text, str) or not text:
            return problem(422, "phone and text are required")
        out_id = data.get("out_id")
        if isinstance(out_id, str) and out_id in by_out_id:
            return Response({"message_id": by_out_id[out_id]["message_id"], "status": "accepted"})
        if fail_rate and random.random() < fail_rate:
            return problem(503, "simulated outage")
        record = {
            "message_id": uuid.uuid4().hex,
            "received_at": datetime.now(UTC).isoformat(),
            "phone": phone,
            "sign_name": data.get("sign_name", ""),
            "template": data.get("template", ""),
            "text": text,
            "out_id": out_id,
        }
        messages.append(record)
        if isinstance(out_id, str):
            by_out_id[out_id] = record
        return Response({"message_id": record["message_id"], "status": "accepted"})

    @get("/messages")
    async def sent(phone: Annotated[str | None, QueryParameter()] = None) -> list[dict[str, Any]]:
        return [m for m in messages if phone is None or m["phone"] == phone]

    @delete("/messages", status_code=204)
    async def clear() -> None:
        messages.clear()
        by_out_id.clear()

    @get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready")
    async def ready() -> dict[str, Any]:
        return {"status": "ok", "messages": len(messages)}

    return Litestar([send, sent, clear, live, ready])


def main() -> None:
    app = create_app(os.environ.get("SMS_GATEWAY_TOKEN", DEV_TOKEN), float(os.environ.get("SMSSIM_FAIL_RATE", "0")))
    uvicorn.run(
        app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8095")), log_level="warning"
    )


if __name__ == "__main__":
    main()
