"""Binding or changing the account's email or mobile number with a one-time code, delivered
through the notification outbox (`/api/v1/me/email`, `/api/v1/me/phone`)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import CodeRequest, CodeSent, EmailRequest, Me, PhoneRequest, me_view
from services.identity.usecases import contacts
from shared.auth import Caller


def _sent(sent: contacts.CodeSent) -> CodeSent:
    return CodeSent(sent_to=sent.sent_to, expires_in=sent.expires_in)


class ContactsController(Controller):
    path = "/api/v1/me"
    tags = ["identity"]

    @post("/email", status_code=202, summary="Bind or change the email: sends a one-time code to it")
    async def start_email(self, deps: IdentityDeps, caller: Caller, data: JSONBody[EmailRequest]) -> CodeSent:
        return _sent(await contacts.send_code(deps, caller, "email", data.email))

    @post("/email/confirm", status_code=200, summary="Confirm the new email with its code")
    async def confirm_email(self, deps: IdentityDeps, caller: Caller, data: JSONBody[CodeRequest]) -> Me:
        return me_view(await contacts.confirm_code(deps, caller, "email", data.code))

    @post("/phone", status_code=202, summary="Bind or change the mobile number: sends a one-time code by SMS")
    async def start_phone(self, deps: IdentityDeps, caller: Caller, data: JSONBody[PhoneRequest]) -> CodeSent:
        return _sent(await contacts.send_code(deps, caller, "phone", data.phone))

    @post("/phone/confirm", status_code=200, summary="Confirm the new mobile number with its code")
    async def confirm_phone(self, deps: IdentityDeps, caller: Caller, data: JSONBody[CodeRequest]) -> Me:
        return me_view(await contacts.confirm_code(deps, caller, "phone", data.code))
