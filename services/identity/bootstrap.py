"""The first admin: created at start from KAMENG_ADMIN_EMAIL / KAMENG_ADMIN_PASSWORD, once."""

from __future__ import annotations

import logging

from pymongo.errors import DuplicateKeyError

from services.identity.api_auth import create_user
from services.identity.domain import normalize_email
from services.identity.kit import kit_for
from services.identity.store import USERS
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def ensure_admin(runtime: Runtime) -> None:
    kit = kit_for(runtime)
    settings = kit.settings
    if not settings.admin_email or settings.admin_password is None:
        return
    email = normalize_email(settings.admin_email)
    if email is None:
        log.error("KAMENG_ADMIN_EMAIL %r is not an email address; no admin created", settings.admin_email)
        return
    # Idempotent: an existing account is left as it is (its password may have been changed).
    if await kit.db[USERS].count_documents({"email": email}, limit=1):
        return
    try:
        user_id = await create_user(
            kit, email=email, phone=None, password=settings.admin_password.get_secret_value(), roles=["admin", "staff"]
        )
    except DuplicateKeyError:
        return  # another replica created it first
    log.info("created the bootstrap admin %s (%s)", email, user_id)
