"""A webhook endpoint for Kameng's order events: checks the signature, then applies each event once.

Kameng POSTs the event JSON with `X-Kameng-Signature` = hex HMAC-SHA256 of the exact body bytes
with the webhook's secret (shown once, when the webhook is registered). The receiver:

- answers 401 and ignores the body when the signature does not match (compared in constant time);
- otherwise applies the event once (`OrderBook` deduplicates on `event_id`: a delivery can come
  twice) and answers 200 either way, so Kameng stops retrying it.

Standard library only (plus `OrderBook` from consumer.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from examples.partner.consumer import OrderBook


def valid_signature(secret: str, body: bytes, given: str | None) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return given is not None and hmac.compare_digest(expected, given)


class WebhookReceiver:
    """`WebhookReceiver(book).start()` listens on 127.0.0.1 (a free port unless given); set
    `.secret` once the webhook is registered. `.rejected` counts refused (forged) requests."""

    def __init__(self, book: OrderBook, *, host: str = "127.0.0.1", port: int = 0, secret: str | None = None) -> None:
        self.book = book
        self.secret = secret
        self.rejected = 0
        self.accepted = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.handle(body, self.headers.get("X-Kameng-Signature"))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, body: bytes, signature: str | None) -> int:
        if self.secret is None or not valid_signature(self.secret, body, signature):
            self.rejected += 1
            return 401
        self.accepted += 1
        self.book.apply(json.loads(body))
        return 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/kameng/order-events"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
