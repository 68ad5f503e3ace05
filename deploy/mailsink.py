"""A local SMTP sink for dev and tests: accepts every email (aiosmtpd) and keeps it, so nothing
leaves the machine and tests can read what the platform sent.

    python -m deploy.mailsink          # SMTP on $SMTP_PORT (2525), HTTP on $PORT (8025)

HTTP: `GET /messages?to=<address>` (newest last), `DELETE /messages`, `/health/live`,
`/health/ready`. With `MAILSINK_DIR` set, every message is also written there as a `.eml` file.
Dev and test only: it has no authentication and keeps everything in memory.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import Litestar, delete, get


class Inbox:
    """The aiosmtpd handler: every accepted message, parsed."""

    def __init__(self, folder: Path | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # aiosmtpd hook name
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        received = datetime.now(UTC)
        record = {
            "id": len(self.messages) + 1,
            "received_at": received.isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(parsed.get("Subject", "")),
            "headers": {k: str(v) for k, v in parsed.items()},
            "body": body.get_content() if body is not None else "",
        }
        self.messages.append(record)
        if self.folder is not None:
            (self.folder / f"{received:%Y%m%dT%H%M%S%f}-{record['id']}.eml").write_bytes(raw)
        return "250 Message accepted for delivery"


def create_app(smtp_host: str, smtp_port: int, folder: Path | None = None) -> Litestar:
    inbox = Inbox(folder)

    @asynccontextmanager
    async def smtp_server(app: Litestar) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(inbox, hostname="kameng-mailsink"), smtp_host, smtp_port)
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    @get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready")
    async def ready() -> dict[str, Any]:
        return {"status": "ok", "smtp": f"{smtp_host}:{smtp_port}"}

    @get("/messages")
    async def messages(to: str | None = None) -> list[dict[str, Any]]:
        if to is None:
            return inbox.messages
        return [m for m in inbox.messages if to.lower() in (r.lower() for r in m["rcpt_tos"])]

    @delete("/messages", status_code=204)
    async def clear() -> None:
        inbox.messages.clear()

    return Litestar([live, ready, messages, clear], lifespan=[smtp_server])


def main() -> None:
    folder = os.environ.get("MAILSINK_DIR")
    app = create_app(
        os.environ.get("SMTP_HOST", "127.0.0.1"),
        int(os.environ.get("SMTP_PORT", "2525")),
        Path(folder) if folder else None,
    )
    uvicorn.run(
        app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8025")), log_level="warning"
    )


if __name__ == "__main__":
    main()
