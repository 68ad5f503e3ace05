"""Delivers identity's one-time codes to people: email over SMTP (aiosmtplib), SMS through the
SMS gateway's HTTP API (in dev and tests the simulator `deploy/smssim.py`; a real provider such as
Aliyun SMS takes the same fields: phone, sign name, template, parameters).

The texts are rendered here, from the template name and its parameters. Nothing here logs a
message's text or parameters: they hold the code.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from services.identity.settings import IdentitySettings

TEMPLATES: dict[str, tuple[str, str]] = {
    # template -> (email subject, text); {code} and {minutes} come from the parameters.
    "verify-email": (
        "Kameng 邮箱验证码 / email code",
        "您的 Kameng 验证码是 {code}，{minutes} 分钟内有效。Your Kameng code is {code} (valid {minutes} min).",
    ),
    "verify-phone": ("", "【Kameng】您的验证码是 {code}，{minutes} 分钟内有效，请勿告诉他人。"),
    "reset-password": (
        "Kameng 重置密码 / password reset",
        "您正在重置 Kameng 密码，验证码 {code}，{minutes} 分钟内有效。如非本人操作请忽略。"
        " Your Kameng password reset code is {code} (valid {minutes} min). If you did not ask, ignore this.",
    ),
}


class DeliveryFailed(Exception):
    """The message was not accepted; the text of the error holds no code."""


def render(template: str, params: dict[str, Any]) -> tuple[str, str]:
    subject, text = TEMPLATES[template]
    return subject, text.format(**params)


class Notifier:
    def __init__(self, settings: IdentitySettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=settings.smtp_timeout_seconds)

    async def send(self, *, channel: str, to: str, template: str, params: dict[str, Any], ref: str) -> None:
        """Send one message; `ref` (the notification id) travels along so a repeat after a crash
        can be recognised. Raises DeliveryFailed when the server refuses or cannot be reached."""
        subject, text = render(template, params)
        if channel == "email":
            await self._email(to, subject, text, ref)
        elif channel == "sms":
            await self._sms(to, template, text, ref)
        else:
            raise DeliveryFailed(f"unknown channel {channel!r}")

    async def _email(self, to: str, subject: str, text: str, ref: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["X-Kameng-Notification"] = ref
        message.set_content(text)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_use_tls,
                timeout=s.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}") from None

    async def _sms(self, to: str, template: str, text: str, ref: str) -> None:
        s = self.settings
        try:
            r = await self.http.post(
                s.sms_gateway_url.rstrip("/") + "/api/sms",
                json={"phone": to, "sign_name": s.sms_sign_name, "template": template, "text": text, "out_id": ref},
                headers={"Authorization": f"Bearer {s.sms_gateway_token.get_secret_value()}"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"SMS gateway: {type(exc).__name__}") from None
        if r.status_code >= 300:
            raise DeliveryFailed(f"SMS gateway answered {r.status_code}")
