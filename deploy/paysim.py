"""A simulated third-party payment provider (dev and tests only): `python -m deploy.paysim`.

It behaves like the Alipay/WeChat-style gateways the wallet is written against:

- `POST /api/orders` (merchant, signed): register a payment {merchant_trade_no, amount_cents,
  channel, notify_url} -> signed {provider_trade_no, pay_url}; idempotent per merchant_trade_no.
- `GET /pay/{provider_trade_no}`: the pay page a buyer opens; `POST` it with
  `{"result": "success"}` or `{"result": "fail"}` (the buyer paying or giving up). The provider
  then sends its signed notification to the merchant's notify_url, retrying with backoff until
  the merchant answers 200 `{"result": "success"}`. `{"notify": false}` in the body drops the
  notification, as a lost callback would (the merchant must poll).
- `GET /api/orders/{merchant_trade_no}` (merchant query API): signed current state
  (`pending`, `success`, `fail`, `closed`); `POST .../close` (signed): the merchant gives up on
  an unpaid payment, which then cannot be paid any more.
- `GET /api/orders/{merchant_trade_no}/notification`: the last signed notification, and
  `POST /api/orders/{merchant_trade_no}/notify`: send it again now (tests, support).

Signatures: hex HMAC-SHA256 with the shared `PAYMENT_PROVIDER_SECRET` over `k=v&...` of the
fields sorted by name, without `sign` and empty values, carried in the `sign` field.
State is in memory: restarting the provider forgets its payments (fine for a simulator).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from litestar import Litestar, MediaType, Response, get, post
from litestar.params import Body

log = logging.getLogger("paysim")

DEV_SECRET = "dev-only-payment-provider-secret-0123456789"  # noqa: S105 - the dev default, as in deploy/services.py
NOTIFY_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def canonical(fields: dict[str, Any]) -> bytes:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k] not in (None, "")).encode()


def sign(fields: dict[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), canonical(fields), hashlib.sha256).hexdigest()


class Provider:
    def __init__(self, secret: str, public_url: str) -> None:
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.by_merchant: dict[str, dict[str, Any]] = {}
        self.by_provider: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.client = httpx.AsyncClient(timeout=5.0)

    def signed(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "sign": sign(fields, self.secret)}

    def verify(self, fields: dict[str, Any]) -> bool:
        given = fields.get("sign")
        return isinstance(given, str) and hmac.compare_digest(given, sign(fields, self.secret))

    def notification(self, order: dict[str, Any]) -> dict[str, Any]:
        return self.signed(
            {
                "merchant_trade_no": order["merchant_trade_no"],
                "provider_trade_no": order["provider_trade_no"],
                "amount_cents": order["amount_cents"],
                "channel": order["channel"],
                "status": order["status"],
                "paid_at": order.get("paid_at", ""),
                "notify_id": uuid.uuid4().hex,
            }
        )

    async def deliver(self, order: dict[str, Any]) -> None:
        """Send the notification until the merchant acknowledges it (or the retries run out)."""
        for delay in NOTIFY_DELAYS:
            await asyncio.sleep(delay)
            body = self.notification(order)
            order["last_notification"] = body
            try:
                r = await self.client.post(order["notify_url"], json=body)
                order["notify_attempts"] = order.get("notify_attempts", 0) + 1
                if r.status_code == 200 and r.json().get("result") == "success":
                    order["notified"] = True
                    return
                log.warning("merchant answered %s to %s: %s", r.status_code, order["merchant_trade_no"], r.text[:200])
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("notify %s failed: %r", order["merchant_trade_no"], exc)
        log.error("gave up notifying %s", order["merchant_trade_no"])

    def schedule(self, order: dict[str, Any]) -> None:
        task = asyncio.create_task(self.deliver(order))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def problem(status: int, detail: str) -> Response[dict[str, Any]]:
    return Response(
        {"type": "about:blank", "title": "Payment provider error", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(provider: Provider) -> Litestar:
    @post("/api/orders", status_code=200)
    async def create_order(data: dict[str, Any]) -> Response[dict[str, Any]]:
        if not provider.verify(data):
            return problem(401, "bad merchant signature")
        amount = data.get("amount_cents")
        trade = data.get("merchant_trade_no")
        if not isinstance(amount, int) or amount <= 0 or not isinstance(trade, str) or not data.get("notify_url"):
            return problem(422, "merchant_trade_no, amount_cents > 0 and notify_url are required")
        order = provider.by_merchant.get(trade)
        if order is None:
            order = {
                "merchant_trade_no": trade,
                "provider_trade_no": "P" + uuid.uuid4().hex[:20].upper(),
                "amount_cents": amount,
                "channel": data.get("channel", ""),
                "notify_url": data["notify_url"],
                "status": "pending",
            }
            provider.by_merchant[trade] = order
            provider.by_provider[order["provider_trade_no"]] = order
        elif order["amount_cents"] != amount:
            return problem(409, "this trade number was registered with another amount")
        pay_url = f"{provider.public_url}/pay/{order['provider_trade_no']}"
        return Response(provider.signed({"provider_trade_no": order["provider_trade_no"], "pay_url": pay_url}))

    @get("/pay/{provider_trade_no:str}", media_type=MediaType.HTML)
    async def pay_page(provider_trade_no: str) -> Response[str]:
        order = provider.by_provider.get(provider_trade_no)
        if order is None:
            return Response("<h1>No such payment</h1>", status_code=404, media_type=MediaType.HTML)
        yuan = f"{order['amount_cents'] // 100}.{order['amount_cents'] % 100:02d}"
        return Response(
            f"""<!doctype html><meta charset="utf-8"><title>PaySim</title>
<h1>PaySim ({order["channel"]})</h1><p>Pay ¥{yuan} for {order["merchant_trade_no"]}: <b>{order["status"]}</b></p>
<button onclick="pay('success')">Pay</button> <button onclick="pay('fail')">Fail</button><pre id="out"></pre>
<script>async function pay(r){{const x=await fetch(location.pathname,{{method:'POST',
headers:{{'content-type':'application/json'}},body:JSON.stringify({{result:r}})}});
document.getElementById('out').textContent=await x.text()}}</script>""",
            media_type=MediaType.HTML,
        )

    @post("/pay/{provider_trade_no:str}", status_code=200)
    async def pay(provider_trade_no: str, data: dict[str, Any] = Body()) -> Response[dict[str, Any]]:
        order = provider.by_provider.get(provider_trade_no)
        if order is None:
            return problem(404, "no such payment")
        result = data.get("result")
        if result not in ("success", "fail"):
            return problem(422, 'result must be "success" or "fail"')
        if order["status"] == "closed":
            return problem(409, "the merchant closed this payment")
        if order["status"] == "pending":
            order["status"] = "success" if result == "success" else "fail"
            order["paid_at"] = datetime.now(UTC).isoformat() if result == "success" else ""
        elif order["status"] != result:
            return problem(409, f"payment is already {order['status']}")
        if data.get("notify", True):
            provider.schedule(order)
        return Response({"provider_trade_no": provider_trade_no, "status": order["status"]})

    @get("/api/orders/{merchant_trade_no:str}")
    async def query_order(merchant_trade_no: str) -> Response[dict[str, Any]]:
        return await query(merchant_trade_no)

    async def query(merchant_trade_no: str) -> Response[dict[str, Any]]:
        order = provider.by_merchant.get(merchant_trade_no)
        if order is None:
            return problem(404, "no such payment")
        return Response(
            provider.signed(
                {
                    "merchant_trade_no": merchant_trade_no,
                    "provider_trade_no": order["provider_trade_no"],
                    "amount_cents": order["amount_cents"],
                    "channel": order["channel"],
                    "status": order["status"],
                    "paid_at": order.get("paid_at", ""),
                }
            )
        )

    @post("/api/orders/{merchant_trade_no:str}/close", status_code=200)
    async def close(merchant_trade_no: str, data: dict[str, Any] = Body()) -> Response[dict[str, Any]]:
        """The merchant gives up on an unpaid payment: it can no longer be paid. Answers the state
        after closing (a payment that was made in the meantime stays `success`)."""
        if not provider.verify({**data, "merchant_trade_no": merchant_trade_no}):
            return problem(401, "bad merchant signature")
        order = provider.by_merchant.get(merchant_trade_no)
        if order is None:
            return problem(404, "no such payment")
        if order["status"] == "pending":
            order["status"] = "closed"
        return await query(merchant_trade_no)

    @get("/api/orders/{merchant_trade_no:str}/notification")
    async def last_notification(merchant_trade_no: str) -> Response[dict[str, Any]]:
        order = provider.by_merchant.get(merchant_trade_no)
        if order is None or order["status"] == "pending":
            return problem(404, "no notification for this payment")
        return Response(order.get("last_notification") or provider.notification(order))

    @post("/api/orders/{merchant_trade_no:str}/notify", status_code=200)
    async def notify_again(merchant_trade_no: str) -> Response[dict[str, Any]]:
        order = provider.by_merchant.get(merchant_trade_no)
        if order is None or order["status"] == "pending":
            return problem(404, "no notification for this payment")
        body = provider.notification(order)
        r = await provider.client.post(order["notify_url"], json=body)
        return Response({"merchant_status": r.status_code, "merchant_body": r.json()})

    @get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[create_order, pay_page, pay, query_order, close, last_notification, notify_again, live, ready],
        debug=False,
    )


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s paysim %(message)s"
    )
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8090"))
    public = os.environ.get("PAYSIM_PUBLIC_URL") or f"http://{host}:{port}"
    provider = Provider(os.environ.get("PAYMENT_PROVIDER_SECRET", DEV_SECRET), public)
    uvicorn.run(create_app(provider), host=host, port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
