"""The dev/test SMS gateway keeps what it is sent (once per out_id) and shows it over HTTP."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from deploy.smssim import DEV_TOKEN, create_app

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


async def test_the_sms_gateway_keeps_messages_once_and_lists_them_by_phone() -> None:
    async with AsyncTestClient(create_app()) as client:
        body = {"phone": "13912345678", "sign_name": "Kameng", "template": "verify-phone", "text": "code 123456"}
        first = await client.post("/api/sms", json={**body, "out_id": "n1"}, headers=AUTH)
        again = await client.post("/api/sms", json={**body, "out_id": "n1"}, headers=AUTH)
        assert first.status_code == 200 and first.json()["message_id"] == again.json()["message_id"]
        listed = (await client.get("/messages", params={"phone": "13912345678"})).json()
        assert [(m["template"], m["text"]) for m in listed] == [("verify-phone", "code 123456")]
        assert (await client.get("/messages", params={"phone": "13800000000"})).json() == []
        assert (await client.post("/api/sms", json=body)).status_code == 401
        assert (await client.post("/api/sms", json={"phone": ""}, headers=AUTH)).status_code == 422
        assert (await client.delete("/messages")).status_code == 204
        assert (await client.get("/messages")).json() == []


async def test_a_failure_rate_refuses_messages_with_503() -> None:
    async with AsyncTestClient(create_app(fail_rate=1.0)) as client:
        r = await client.post("/api/sms", json={"phone": "13912345678", "text": "x"}, headers=AUTH)
        assert r.status_code == 503
