"""The SMTP server, through aiosmtplib: sends one email, or says why it could not."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from services.support.settings import SupportSettings


class MailNotSent(Exception):
    """The SMTP server did not take the email (refused, unreachable, timed out)."""


class SmtpMailer:
    def __init__(self, settings: SupportSettings) -> None:
        self.settings = settings

    async def send(self, *, to: str, subject: str, body: str, notification_id: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["X-Kameng-Notification"] = notification_id
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                username=self.settings.smtp_username,
                password=self.settings.smtp_password,
                use_tls=self.settings.smtp_use_tls,
                timeout=self.settings.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailNotSent(f"{type(exc).__name__}: {exc}") from exc
