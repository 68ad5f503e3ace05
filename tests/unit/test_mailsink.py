"""The dev/test SMTP sink keeps what it is sent and shows it over HTTP."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from litestar.testing import AsyncTestClient

from deploy.mailsink import create_app
from deploy.stack import free_port


async def test_sink_receives_and_lists_messages(tmp_path: Path) -> None:
    port = free_port()
    app = create_app("127.0.0.1", port, tmp_path)
    async with AsyncTestClient(app) as client:
        message = EmailMessage()
        message["From"] = "no-reply@kameng.local"
        message["To"] = "buyer@example.com"
        message["Subject"] = "Your order was delivered"
        message.set_content("订单已发货")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        listed = (await client.get("/messages", params={"to": "BUYER@example.com"})).json()
        assert [(m["subject"], m["body"].strip(), m["rcpt_tos"]) for m in listed] == [
            ("Your order was delivered", "订单已发货", ["buyer@example.com"])
        ]
        assert (await client.get("/messages", params={"to": "other@example.com"})).json() == []
        assert len(list(tmp_path.glob("*.eml"))) == 1
        assert (await client.delete("/messages")).status_code == 204
        assert (await client.get("/messages")).json() == []
