"""Identity's use cases against in-memory fakes of the store, the transaction, the login guard and
the gateway deny-list, with a fixed clock: registration, login (identical failures, lockout,
two-factor), refresh rotation and reuse, logout, contacts, API keys, admin changes."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import jwt
import pyotp
import pytest
from pymongo.errors import DuplicateKeyError

from services.identity.denylist import DenyList
from services.identity.deps import IdentityDeps
from services.identity.domain import lock_seconds
from services.identity.lockout import LoginGuard, too_many_attempts
from services.identity.notifier import DeliveryFailed, Notifier
from services.identity.passwords import Passwords
from services.identity.secrets import DEV_SECRETS_KEY, SecretBox
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from services.identity.usecases import admin, auth, contacts, delivery, keys, me, reset, totp
from shared.auth import Caller
from shared.contracts.identity import (
    ApiKeyCreated,
    ApiKeyRevoked,
    ContactChanged,
    LevelChanged,
    RolesChanged,
    UserRegistered,
    UserVerified,
)
from shared.contracts.registry import Event
from shared.errors import Problem
from shared.messaging.outbox import Tx, UnitOfWork

T = TypeVar("T")
Doc = dict[str, Any]
PASSWORD = "correct horse battery"
START = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)


# -- fakes --------------------------------------------------------------------------------------


class FakeStore(IdentityStore):
    """The collections as dicts; the unique indexes (email, phone, ID-number hash) as checks that
    raise DuplicateKeyError like MongoDB does."""

    def __init__(self) -> None:
        self.users: dict[str, Doc] = {}
        self.refresh_tokens: dict[str, Doc] = {}
        self.api_keys: dict[str, Doc] = {}
        self.contact_codes: dict[str, Doc] = {}
        self.notifications: list[Doc] = []

    def _check_unique(self, user_id: str, doc: Doc) -> None:
        for other_id, other in self.users.items():
            if other_id == user_id:
                continue
            for field in ("email", "phone"):
                if doc.get(field) is not None and other.get(field) == doc.get(field):
                    raise DuplicateKeyError(f"duplicate {field}")
            id_hash = (doc.get("real_name") or {}).get("id_hash")
            if id_hash is not None and (other.get("real_name") or {}).get("id_hash") == id_hash:
                raise DuplicateKeyError("duplicate real_name.id_hash")

    def _view(self, user: Doc) -> Doc:
        return copy.deepcopy(user)

    async def add_user(self, tx: Tx, doc: Doc) -> None:
        if doc["_id"] in self.users:
            raise DuplicateKeyError("duplicate _id")
        self._check_unique(doc["_id"], doc)
        self.users[doc["_id"]] = copy.deepcopy(doc)

    async def email_registered(self, email: str) -> bool:
        return any(u.get("email") == email for u in self.users.values())

    async def user_exists(self, user_id: str) -> bool:
        return user_id in self.users

    async def user_view(self, user_id: str) -> Doc | None:
        user = self.users.get(user_id)
        return self._view(user) if user else None

    async def user_for_login(self, login: str) -> Doc | None:
        field = "email" if "@" in login else "phone"
        found = next((u for u in self.users.values() if u.get(field) == login), None)
        return copy.deepcopy(found) if found else None

    async def token_claims(self, user_id: str) -> Doc | None:
        return await self.user_view(user_id)

    async def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> None:
        user = self.users.get(user_id)
        if user and user["password_hash"] == old_hash:
            user["password_hash"] = new_hash

    async def contact_taken(self, channel: str, target: str, *, by_other_than: str) -> bool:
        return any(u.get(channel) == target and uid != by_other_than for uid, u in self.users.items())

    async def set_contact(self, tx: Tx, user_id: str, channel: str, target: str) -> None:
        if user_id in self.users:
            self._check_unique(user_id, {channel: target})
            self.users[user_id][channel] = target

    async def set_real_name(self, tx: Tx, user_id: str, record: Doc) -> bool:
        user = self.users.get(user_id)
        if user is None or "real_name" in user:
            return False
        self._check_unique(user_id, {"real_name": record})
        user["real_name"] = copy.deepcopy(record)
        return True

    async def set_level(self, tx: Tx, user_id: str, level: str) -> Doc | None:
        return self._set(user_id, "level", level)

    async def set_roles(self, tx: Tx, user_id: str, roles: list[str]) -> Doc | None:
        return self._set(user_id, "roles", roles)

    def _set(self, user_id: str, field: str, value: Any) -> Doc | None:
        user = self.users.get(user_id)
        if user is None:
            return None
        before = self._view(user)
        user[field] = value
        user["version"] = user.get("version", 0) + 1
        return {**before, "version": user["version"]}

    async def totp_state(self, user_id: str) -> Doc | None:
        return await self.user_view(user_id)

    async def set_totp_pending(self, user_id: str, sealed: Doc) -> None:
        if user_id in self.users:
            self.users[user_id]["totp_pending"] = sealed

    async def enable_totp(self, user_id: str, pending: Doc, step: int) -> bool:
        user = self.users.get(user_id)
        if user is None or user.get("totp_pending") != pending:
            return False
        user["totp"] = {"enabled": True, "secret": pending, "last_step": step}
        del user["totp_pending"]
        return True

    async def claim_totp_step(self, user_id: str, step: int) -> bool:
        user = self.users.get(user_id)
        if user is None:
            return False
        last = (user.get("totp") or {}).get("last_step")
        if last is not None and last >= step:
            return False
        user.setdefault("totp", {})["last_step"] = step
        return True

    async def disable_totp(self, user_id: str) -> None:
        self.users[user_id].pop("totp", None)

    async def add_refresh_token(self, doc: Doc) -> None:
        self.refresh_tokens[doc["_id"]] = copy.deepcopy(doc)

    async def use_refresh_token(self, digest: str, now: datetime) -> Doc | None:
        doc = self.refresh_tokens.get(digest)
        if doc is None or doc["used_at"] is not None or doc["revoked_at"] is not None or doc["expires_at"] <= now:
            return None
        doc["used_at"] = now
        return copy.deepcopy(doc)

    async def refresh_token(self, digest: str) -> Doc | None:
        doc = self.refresh_tokens.get(digest)
        return copy.deepcopy(doc) if doc else None

    async def family_of_access_token(self, jti: str) -> str | None:
        found = next((d for d in self.refresh_tokens.values() if d["access_jti"] == jti), None)
        return found["family_id"] if found else None

    async def revoke_family(self, family_id: str, now: datetime) -> list[str]:
        family = [d for d in self.refresh_tokens.values() if d["family_id"] == family_id]
        for doc in family:
            if doc["revoked_at"] is None:
                doc["revoked_at"] = now
        return [d["access_jti"] for d in family]

    async def count_active_keys(self, user_id: str) -> int:
        return sum(1 for k in self.api_keys.values() if k["user_id"] == user_id and k["revoked_at"] is None)

    async def add_api_key(self, tx: Tx, doc: Doc) -> None:
        self.api_keys[doc["_id"]] = copy.deepcopy(doc)

    async def api_keys_of(self, user_id: str) -> list[Doc]:
        mine = [k for k in self.api_keys.values() if k["user_id"] == user_id]
        return [{f: v for f, v in k.items() if f != "secret"} for k in sorted(mine, key=lambda k: k["created_at"])]

    async def active_api_key(self, key_id: str) -> Doc | None:
        key = self.api_keys.get(key_id)
        return copy.deepcopy(key) if key and key["revoked_at"] is None else None

    async def revoke_api_key(self, tx: Tx, key_id: str, user_id: str, now: datetime) -> bool:
        key = self.api_keys.get(key_id)
        if key is None or key["user_id"] != user_id or key["revoked_at"] is not None:
            return False
        key["revoked_at"] = now
        return True

    async def api_key_exists(self, tx: Tx, key_id: str, user_id: str) -> bool:
        key = self.api_keys.get(key_id)
        return key is not None and key["user_id"] == user_id

    async def contact_code(self, code_id: str) -> Doc | None:
        doc = self.contact_codes.get(code_id)
        return copy.deepcopy(doc) if doc else None

    async def save_contact_code(self, tx: Tx, code_id: str, doc: Doc) -> None:
        self.contact_codes[code_id] = copy.deepcopy(doc)

    async def count_code_attempt(self, code_id: str) -> None:
        if code_id in self.contact_codes:
            self.contact_codes[code_id]["attempts"] += 1

    async def drop_contact_code(self, code_id: str) -> None:
        self.contact_codes.pop(code_id, None)

    async def consume_contact_code(self, tx: Tx, code_id: str, code_hash: str) -> bool:
        doc = self.contact_codes.get(code_id)
        if doc is None or doc["code_hash"] != code_hash:
            return False
        del self.contact_codes[code_id]
        return True

    async def queue_notification(self, tx: Tx, doc: Doc) -> None:
        self.notifications.append(copy.deepcopy(doc))

    async def codes_sent_since(self, to: str, since: datetime) -> int:
        return sum(1 for n in self.notifications if n["to"] == to and n["created_at"] >= since)

    async def claim_due_notification(self, now: datetime, lease_until: datetime) -> Doc | None:
        due = [n for n in self.notifications if n["status"] == "pending" and n["next_at"] <= now]
        if not due:
            return None
        found = min(due, key=lambda n: n["next_at"])
        found["next_at"] = lease_until
        return copy.deepcopy(found)

    def _notification(self, notification_id: str) -> Doc:
        return next(n for n in self.notifications if n["_id"] == notification_id)

    async def notification_done(self, notification_id: str, status: str, now: datetime) -> None:
        doc = self._notification(notification_id)
        doc.update(status=status, done_at=now)
        doc.pop("sealed", None)
        doc.pop("next_at", None)

    async def notification_retry(self, notification_id: str, attempts: int, next_at: datetime, error: str) -> None:
        self._notification(notification_id).update(attempts=attempts, next_at=next_at, error=error)

    async def user_for_reset(self, login: str) -> Doc | None:
        found = await self.user_for_login(login)
        return {"_id": found["_id"]} if found else None

    async def set_password_hash(self, tx: Tx, user_id: str, new_hash: str) -> None:
        self.users[user_id]["password_hash"] = new_hash

    async def revoke_families_of_user(self, user_id: str, now: datetime) -> list[str]:
        mine = [d for d in self.refresh_tokens.values() if d["user_id"] == user_id]
        for doc in mine:
            if doc["revoked_at"] is None:
                doc["revoked_at"] = now
        return [d["access_jti"] for d in mine]


class FakeNotifier(Notifier):
    """What was sent, by address; `refuse` makes every send fail like a server that is down."""

    def __init__(self) -> None:
        self.sent: list[Doc] = []
        self.refuse = False

    async def send(self, *, channel: str, to: str, template: str, params: dict[str, Any], ref: str) -> None:
        if self.refuse:
            raise DeliveryFailed("SMTP: ConnectionRefusedError")
        self.sent.append({"channel": channel, "to": to, "template": template, "params": params, "ref": ref})

    def code_to(self, to: str) -> str:
        return str([m for m in self.sent if m["to"] == to][-1]["params"]["code"])


class RecordingTx(Tx):
    def __init__(self) -> None:
        super().__init__(db=cast(Any, None), session=cast(Any, None), producer="identity")
        self.payloads: list[Event] = []

    def emit(self, payload: Event, *, event_id: str | None = None) -> Any:
        self.payloads.append(payload)
        return super().emit(payload, event_id=event_id)


class FakeUow(UnitOfWork):
    """Commits the events of a function that returns; one that raises leaves the store as it was
    and emits nothing, like an aborted transaction."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.events: list[Event] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        saved = copy.deepcopy(self.store.__dict__)
        tx = RecordingTx()
        try:
            result = await fn(tx)
        except BaseException:
            self.store.__dict__.update(saved)
            raise
        self.events.extend(tx.payloads)
        return result

    def emitted(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class FakeGuard(LoginGuard):
    """Per-login failure counting and locks as in Redis, without the per-address counter."""

    def __init__(self, settings: IdentitySettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.failures: dict[str, int] = {}
        self.locks_in_a_row: dict[str, int] = {}
        self.locked_until: dict[str, datetime] = {}

    async def check(self, login: str, ip: str) -> None:
        until = self.locked_until.get(login)
        if until is not None and until > self.clock():
            raise too_many_attempts(int((until - self.clock()).total_seconds()))

    async def failed(self, login: str, ip: str) -> None:
        s = self.settings
        self.failures[login] = self.failures.get(login, 0) + 1
        if self.failures[login] >= s.login_max_failures_per_account:
            self.locks_in_a_row[login] = self.locks_in_a_row.get(login, 0) + 1
            seconds = lock_seconds(
                self.locks_in_a_row[login], base_seconds=s.login_lock_base_seconds, max_seconds=s.login_lock_max_seconds
            )
            self.locked_until[login] = self.clock() + timedelta(seconds=seconds)
            self.failures[login] = 0
            raise too_many_attempts(seconds)

    async def succeeded(self, login: str) -> None:
        self.failures.pop(login, None)
        self.locks_in_a_row.pop(login, None)


class FakeDenyList(DenyList):
    def __init__(self) -> None:
        self.denied: set[str] = set()
        self.revoked_keys: set[str] = set()
        self.claims: dict[str, tuple[int, str, list[str]]] = {}

    async def deny_access_tokens(self, jtis: list[str]) -> None:
        self.denied.update(jtis)

    async def revoke_api_key(self, key_id: str) -> None:
        self.revoked_keys.add(key_id)

    async def publish_claims(self, user_id: str, *, version: int, level: str, roles: list[str]) -> None:
        stored = self.claims.get(user_id)
        if stored is None or stored[0] < version:
            self.claims[user_id] = (version, level, sorted(roles))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class World:
    """The deps with every fake, and handles on them for the assertions."""

    def __init__(self) -> None:
        # The cheapest argon2 parameters: the tests check the flow, not the hash's cost.
        self.settings = IdentitySettings(argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1)
        self.store = FakeStore()
        self.uow = FakeUow(self.store)
        self.clock = Clock()
        self.guard = FakeGuard(self.settings, self.clock)
        self.denylist = FakeDenyList()
        self.notifier = FakeNotifier()
        self.deps = IdentityDeps(
            settings=self.settings,
            store=self.store,
            uow=self.uow,
            box=SecretBox(DEV_SECRETS_KEY),
            passwords=Passwords(self.settings),
            guard=self.guard,
            denylist=self.denylist,
            notifier=self.notifier,
            clock=self.clock,
        )

    async def deliver(self) -> int:
        return await delivery.deliver_due(self.deps)

    async def account(self, email: str = "alice@example.com", roles: list[str] | None = None) -> str:
        if roles is None:
            return await auth.register(self.deps, email=email, phone=None, password=PASSWORD)
        return await auth.create_user(self.deps, email=email, phone=None, password=PASSWORD, roles=roles)

    def caller(self, user_id: str, *, via: str = "token", roles: tuple[str, ...] = ("buyer",)) -> Caller:
        return Caller(user_id=user_id, roles=roles, via=via, token_id="jti-" + user_id)  # type: ignore[arg-type]

    def claims(self, tokens: auth.Tokens) -> dict[str, Any]:
        secret = self.settings.jwt_secret.get_secret_value()
        return cast(dict[str, Any], jwt.decode(tokens.access_token, secret, algorithms=["HS256"], issuer="kameng"))


@pytest.fixture
def world() -> World:
    return World()


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


# -- registration -------------------------------------------------------------------------------


async def test_register_stores_the_normalised_account_with_its_event(world: World) -> None:
    user_id = await auth.register(world.deps, email=" Alice@Example.COM", phone="+86 139-1234-5678", password=PASSWORD)
    user = world.store.users[user_id]
    assert (user["email"], user["phone"], user["roles"], user["level"]) == (
        "alice@example.com",
        "13912345678",
        ["buyer"],
        "retail",
    )
    assert user["password_hash"].startswith("$argon2id$") and PASSWORD not in repr(user)
    assert user["created_at"] == START
    [event] = world.uow.emitted(UserRegistered)
    assert (event.user_id, event.email, event.phone) == (user_id, "alice@example.com", "13912345678")


async def test_register_taken_email_is_409_and_changes_nothing(world: World) -> None:
    await world.account("alice@example.com")
    problem = await problem_of(auth.register(world.deps, email="ALICE@example.com", phone=None, password=PASSWORD))
    assert (problem.status_code, problem.slug) == (409, "account-exists")
    assert len(world.store.users) == 1 and len(world.uow.emitted(UserRegistered)) == 1


async def test_register_reports_every_bad_field(world: World) -> None:
    problem = await problem_of(auth.register(world.deps, email="nope", phone="12012345678", password="password123"))
    assert problem.status_code == 422
    assert {e["field"] for e in problem.extra["errors"]} == {"email", "phone", "password"}
    problem = await problem_of(auth.register(world.deps, email=None, phone=None, password=PASSWORD))
    assert [e["field"] for e in problem.extra["errors"]] == ["email"]
    assert world.store.users == {}


# -- login --------------------------------------------------------------------------------------


async def test_login_issues_a_token_pair_and_starts_a_family(world: World) -> None:
    user_id = await world.account(roles=["admin", "staff"])
    tokens = await auth.login(world.deps, login=" ALICE@example.com ", password=PASSWORD, totp_code=None, ip="1.2.3.4")
    claims = world.claims(tokens)
    assert claims["sub"] == user_id and claims["roles"] == ["admin", "staff"] and claims["level"] == "retail"
    assert tokens.expires_in == world.settings.access_token_ttl_seconds
    [record] = world.store.refresh_tokens.values()
    assert tokens.refresh_token not in repr(record)  # stored as its digest only
    assert record["access_jti"] == claims["jti"] and record["user_id"] == user_id
    assert record["expires_at"] == START + timedelta(seconds=world.settings.refresh_token_ttl_seconds)


async def test_wrong_password_and_unknown_login_fail_alike(world: World) -> None:
    await world.account("alice@example.com")
    wrong = await problem_of(
        auth.login(world.deps, login="alice@example.com", password="not it at all", totp_code=None, ip="ip")
    )
    unknown = await problem_of(
        auth.login(world.deps, login="bob@example.com", password="not it at all", totp_code=None, ip="ip")
    )
    assert (wrong.status_code, wrong.slug, wrong.detail, wrong.headers) == (
        unknown.status_code,
        unknown.slug,
        unknown.detail,
        unknown.headers,
    )
    assert (wrong.status_code, wrong.slug) == (401, "invalid-credentials")
    # Both count towards a lock, so guessing accounts is limited like guessing passwords.
    assert world.guard.failures == {"alice@example.com": 1, "bob@example.com": 1}
    assert world.store.refresh_tokens == {}


async def test_failures_lock_the_account_even_for_the_right_password(world: World) -> None:
    await world.account("alice@example.com")

    async def attempt(password: str) -> Problem:
        return await problem_of(
            auth.login(world.deps, login="alice@example.com", password=password, totp_code=None, ip="ip")
        )

    for _ in range(world.settings.login_max_failures_per_account - 1):
        assert (await attempt("wrong password!")).status_code == 401
    locked = await attempt("wrong password!")
    assert (locked.status_code, locked.slug) == (429, "too-many-attempts")
    assert locked.headers == {"Retry-After": str(world.settings.login_lock_base_seconds)}
    assert (await attempt(PASSWORD)).status_code == 429

    world.clock.advance(world.settings.login_lock_base_seconds + 1)
    tokens = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    assert tokens.access_token


# -- refresh tokens and logout ------------------------------------------------------------------


async def test_refresh_rotates_within_the_family(world: World) -> None:
    await world.account()
    first = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    world.store.users[next(iter(world.store.users))]["level"] = "vip"
    second = await auth.refresh(world.deps, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert world.claims(second)["level"] == "vip"  # the account's current level, not the old token's
    families = {d["family_id"] for d in world.store.refresh_tokens.values()}
    assert len(families) == 1 and len(world.store.refresh_tokens) == 2
    assert await auth.refresh(world.deps, second.refresh_token)


async def test_a_reused_refresh_token_revokes_its_whole_family(world: World) -> None:
    await world.account()
    first = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    other = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    second = await auth.refresh(world.deps, first.refresh_token)
    third = await auth.refresh(world.deps, second.refresh_token)

    reused = await problem_of(auth.refresh(world.deps, first.refresh_token))
    assert (reused.status_code, reused.slug) == (401, "invalid-refresh-token")
    assert "already used" in reused.detail
    # The latest token of the family is dead too, and every access token issued in it is denied.
    assert (await problem_of(auth.refresh(world.deps, third.refresh_token))).slug == "invalid-refresh-token"
    assert world.denylist.denied == {world.claims(t)["jti"] for t in (first, second, third)}
    # Another session of the same account is untouched.
    assert await auth.refresh(world.deps, other.refresh_token)


async def test_unknown_and_expired_refresh_tokens_are_refused(world: World) -> None:
    await world.account()
    tokens = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    assert "not valid" in (await problem_of(auth.refresh(world.deps, "rt_made-up"))).detail
    world.clock.advance(world.settings.refresh_token_ttl_seconds + 1)
    expired = await problem_of(auth.refresh(world.deps, tokens.refresh_token))
    assert expired.slug == "invalid-refresh-token" and "expired" in expired.detail
    assert world.denylist.denied == set()  # expiry is not theft


async def test_logout_revokes_the_session_and_denies_its_access_tokens(world: World) -> None:
    user_id = await world.account()
    tokens = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="ip")
    jti = world.claims(tokens)["jti"]
    await auth.logout(world.deps, Caller(user_id=user_id, token_id=jti), None)
    assert jti in world.denylist.denied
    assert all(d["revoked_at"] == START for d in world.store.refresh_tokens.values())
    assert (await problem_of(auth.refresh(world.deps, tokens.refresh_token))).status_code == 401


# -- two-factor ---------------------------------------------------------------------------------


async def enable_totp(world: World, user_id: str) -> pyotp.TOTP:
    started = await totp.start_totp(world.deps, world.caller(user_id))
    assert started.otpauth_uri.startswith("otpauth://totp/") and "issuer=Kameng" in started.otpauth_uri
    code = pyotp.TOTP(started.secret).at(world.clock())
    await totp.confirm_totp(world.deps, world.caller(user_id), code)
    assert started.secret not in repr(world.store.users[user_id])  # sealed
    return pyotp.TOTP(started.secret)


async def test_login_needs_the_totp_code_once_it_is_on(world: World) -> None:
    user_id = await world.account()
    generator = await enable_totp(world, user_id)
    world.clock.advance(30)  # the confirming code's step is used up

    def login(code: str | None) -> Awaitable[auth.Tokens]:
        return auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=code, ip="ip")

    missing = await problem_of(login(None))
    assert (missing.status_code, missing.slug) == (401, "totp-required")
    code = generator.at(world.clock())
    wrong = "000000" if code != "000000" else "111111"
    assert (await problem_of(login(wrong))).slug == "invalid-totp"
    assert await login(code)
    # A code seen once cannot be replayed, even within its 30 s.
    assert (await problem_of(login(code))).slug == "invalid-totp"


async def test_totp_setup_and_disable_rules(world: World) -> None:
    user_id = await world.account()
    caller = world.caller(user_id)
    not_started = await problem_of(totp.confirm_totp(world.deps, caller, "123456"))
    assert (not_started.status_code, not_started.slug) == (409, "totp-not-started")
    generator = await enable_totp(world, user_id)
    assert (await problem_of(totp.start_totp(world.deps, caller))).slug == "totp-already-enabled"
    assert (await me.account(world.deps, user_id))["totp"]["enabled"] is True

    same_step = generator.at(world.clock())
    assert (await problem_of(totp.disable_totp(world.deps, caller, same_step))).status_code == 422
    world.clock.advance(30)
    await totp.disable_totp(world.deps, caller, generator.at(world.clock()))
    assert "totp" not in world.store.users[user_id]
    assert (await problem_of(totp.disable_totp(world.deps, caller, "123456"))).slug == "totp-not-enabled"


async def test_partner_keys_cannot_manage_the_accounts_credentials(world: World) -> None:
    user_id = await world.account()
    partner = world.caller(user_id, via="api_key")
    for call in (
        totp.start_totp(world.deps, partner),
        keys.create_api_key(world.deps, partner, "more"),
        me.verify_real_name(world.deps, partner, name="张三", id_number="11010519491231002X"),
        contacts.send_code(world.deps, partner, "phone", "13912345678"),
    ):
        problem = await problem_of(call)
        assert (problem.status_code, problem.slug) == (403, "not-for-api-keys")


# -- real name ----------------------------------------------------------------------------------


async def test_real_name_verifies_once_and_one_number_one_account(world: World) -> None:
    alice = await world.account("alice@example.com")
    bob = await world.account("bob@example.com")
    number = "11010519491231002X"
    masked = await me.verify_real_name(world.deps, world.caller(alice), name="张三", id_number=number.lower())
    assert masked == "110***********002X"
    assert number not in repr(world.store.users[alice]) and "张三" not in repr(world.store.users[alice])
    [verified] = world.uow.emitted(UserVerified)
    assert verified.user_id == alice

    again = await problem_of(me.verify_real_name(world.deps, world.caller(alice), name="张三", id_number=number))
    assert again.slug == "already-verified"
    taken = await problem_of(me.verify_real_name(world.deps, world.caller(bob), name="李四", id_number=number))
    assert (taken.status_code, taken.slug) == (409, "id-number-taken")
    assert "real_name" not in world.store.users[bob] and len(world.uow.emitted(UserVerified)) == 1


# -- contacts -----------------------------------------------------------------------------------


async def test_binding_a_phone_with_a_one_time_code(world: World) -> None:
    user_id = await world.account()
    caller = world.caller(user_id)
    sent = await contacts.send_code(world.deps, caller, "phone", "+86 13912345678")
    assert (sent.sent_to, sent.expires_in) == ("139****5678", world.settings.contact_code_ttl_seconds)
    [note] = world.store.notifications
    assert (note["channel"], note["to"], note["template"]) == ("sms", "13912345678", "verify-phone")
    assert await world.deliver() == 1
    code = world.notifier.code_to("13912345678")
    assert code not in repr(world.store.contact_codes)  # kept hashed
    assert code not in repr(world.store.notifications)  # sealed until sent, erased after
    assert world.store.notifications[0]["status"] == "sent" and "sealed" not in world.store.notifications[0]

    resend = await problem_of(contacts.send_code(world.deps, caller, "phone", "13912345678"))
    assert (resend.status_code, resend.slug) == (429, "code-sent-recently")
    wrong = "000000" if code != "000000" else "111111"
    assert (await problem_of(contacts.confirm_code(world.deps, caller, "phone", wrong))).status_code == 422
    assert world.store.users[user_id].get("phone") is None

    view = await contacts.confirm_code(world.deps, caller, "phone", code)
    assert view["phone"] == "13912345678"
    [changed] = world.uow.emitted(ContactChanged)
    assert (changed.user_id, changed.phone) == (user_id, "13912345678")
    used = await problem_of(contacts.confirm_code(world.deps, caller, "phone", code))
    assert (used.status_code, used.slug) == (409, "no-pending-code")

    other = await world.account("bob@example.com")
    taken = await problem_of(contacts.send_code(world.deps, world.caller(other), "phone", "13912345678"))
    assert taken.slug == "contact-taken"


async def test_a_code_is_tried_a_few_times_only(world: World) -> None:
    user_id = await world.account()
    caller = world.caller(user_id)
    await contacts.send_code(world.deps, caller, "email", "new@example.com")
    await world.deliver()
    code = world.notifier.code_to("new@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(world.settings.contact_code_max_attempts):
        await problem_of(contacts.confirm_code(world.deps, caller, "email", wrong))
    spent = await problem_of(contacts.confirm_code(world.deps, caller, "email", code))
    assert (spent.status_code, spent.slug) == (429, "too-many-attempts")
    assert world.store.contact_codes == {} and world.store.users[user_id]["email"] == "alice@example.com"


async def test_codes_to_one_address_are_limited_per_hour(world: World) -> None:
    caller = world.caller(await world.account())
    for _ in range(world.settings.contact_codes_per_hour):
        await contacts.send_code(world.deps, caller, "email", "new@example.com")
        world.clock.advance(world.settings.contact_code_resend_seconds)
    over = await problem_of(contacts.send_code(world.deps, caller, "email", "new@example.com"))
    assert (over.status_code, over.slug) == (429, "too-many-codes")
    world.clock.advance(3600)
    await contacts.send_code(world.deps, caller, "email", "new@example.com")


# -- delivering the codes -----------------------------------------------------------------------


async def test_a_code_stored_before_a_crash_is_still_delivered(world: World) -> None:
    caller = world.caller(await world.account())
    await contacts.send_code(world.deps, caller, "email", "new@example.com")
    # The process "died" here: the code and its delivery committed, nothing was sent. A later
    # round of the loop (this replica restarted or another) sends it.
    assert world.notifier.sent == []
    assert await world.deliver() == 1
    assert [m["template"] for m in world.notifier.sent] == ["verify-email"]
    assert await world.deliver() == 0  # sent once


async def test_a_refused_delivery_is_retried_with_backoff_and_dropped_when_the_code_expires(world: World) -> None:
    caller = world.caller(await world.account())
    await contacts.send_code(world.deps, caller, "phone", "13912345678")
    world.notifier.refuse = True
    assert await world.deliver() == 1
    [note] = world.store.notifications
    assert (note["status"], note["attempts"]) == ("pending", 1) and "SMTP" in note["error"]
    assert await world.deliver() == 0  # not due again at once
    world.notifier.refuse = False
    world.clock.advance(2)
    assert await world.deliver() == 1 and world.notifier.sent[0]["to"] == "13912345678"

    await contacts.send_code(world.deps, caller, "email", "late@example.com")
    world.clock.advance(world.settings.contact_code_ttl_seconds + 1)
    assert await world.deliver() == 1
    assert world.store.notifications[-1]["status"] == "expired" and "sealed" not in world.store.notifications[-1]
    assert [m["to"] for m in world.notifier.sent] == ["13912345678"]


async def test_a_message_that_cannot_be_opened_is_dropped_not_retried_forever(world: World) -> None:
    caller = world.caller(await world.account())
    await contacts.send_code(world.deps, caller, "email", "a@example.com")
    world.clock.advance(world.settings.contact_code_resend_seconds)
    await contacts.send_code(world.deps, caller, "email", "b@example.com")
    first = world.store.notifications[0]
    first["sealed"] = SecretBox("other:" + DEV_SECRETS_KEY.split(":", 1)[1]).seal("{}", context="x")
    assert await world.deliver() == 2
    assert [n["status"] for n in world.store.notifications] == ["failed", "sent"]
    assert [m["to"] for m in world.notifier.sent] == ["b@example.com"]


# -- password reset -----------------------------------------------------------------------------


async def test_password_reset_with_the_delivered_code_ends_every_session(world: World) -> None:
    user_id = await world.account()
    first = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="1")
    second = await auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="2")
    await reset.request_reset(world.deps, "Alice@Example.com")
    await world.deliver()
    [message] = world.notifier.sent
    assert (message["channel"], message["template"]) == ("email", "reset-password")
    code = world.notifier.code_to("alice@example.com")

    new_password = "a brand new passphrase"
    weak = await problem_of(reset.confirm_reset(world.deps, "alice@example.com", code, "short"))
    assert weak.status_code == 422
    wrong = "000000" if code != "000000" else "111111"
    assert (
        await problem_of(reset.confirm_reset(world.deps, "alice@example.com", wrong, new_password))
    ).status_code == 422
    await reset.confirm_reset(world.deps, "alice@example.com", code, new_password)

    # Every session ended: refresh tokens refused, their access tokens denied at the gateway.
    for tokens in (first, second):
        refused = await problem_of(auth.refresh(world.deps, tokens.refresh_token))
        assert refused.status_code == 401
    assert len(world.denylist.denied) == 2
    old = await problem_of(auth.login(world.deps, login="alice@example.com", password=PASSWORD, totp_code=None, ip="1"))
    assert old.status_code == 401
    await auth.login(world.deps, login="alice@example.com", password=new_password, totp_code=None, ip="1")
    # The code resets once.
    again = await problem_of(reset.confirm_reset(world.deps, "alice@example.com", code, "yet another passphrase"))
    assert again.status_code == 422
    assert world.store.users[user_id]["password_hash"].startswith("$argon2id$")


async def test_password_reset_does_not_tell_which_logins_exist(world: World) -> None:
    await world.account()
    await reset.request_reset(world.deps, "nobody@example.com")  # no error, nothing queued
    assert world.store.notifications == []
    await reset.request_reset(world.deps, "alice@example.com")
    await reset.request_reset(world.deps, "alice@example.com")  # too soon: silently nothing
    assert len(world.store.notifications) == 1
    unknown = await problem_of(reset.confirm_reset(world.deps, "nobody@example.com", "123456", "a fine passphrase"))
    await world.deliver()
    code = world.notifier.code_to("alice@example.com")
    wrong = "000000" if code != "000000" else "111111"
    mistyped = await problem_of(reset.confirm_reset(world.deps, "alice@example.com", wrong, "a fine passphrase"))
    assert (unknown.status_code, unknown.extra) == (mistyped.status_code, mistyped.extra)


async def test_password_reset_codes_are_tried_a_few_times_only(world: World) -> None:
    await world.account()
    await reset.request_reset(world.deps, "alice@example.com")
    await world.deliver()
    code = world.notifier.code_to("alice@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(world.settings.contact_code_max_attempts):
        await problem_of(reset.confirm_reset(world.deps, "alice@example.com", wrong, "a fine passphrase"))
    spent = await problem_of(reset.confirm_reset(world.deps, "alice@example.com", code, "a fine passphrase"))
    assert spent.status_code == 429


# -- API keys -----------------------------------------------------------------------------------


async def test_api_keys_are_sealed_listed_without_secrets_and_revoked_once(world: World) -> None:
    user_id = await world.account()
    caller = world.caller(user_id)
    key = await keys.create_api_key(world.deps, caller, "  shop  ")
    assert key.name == "shop" and key.secret.startswith("sk_") and key.created_at == START
    assert key.secret not in repr(world.store.api_keys)
    [created] = world.uow.emitted(ApiKeyCreated)  # support opens the partner's feed topic on it
    assert (created.user_id, created.key_id) == (user_id, key.key_id) and key.secret not in repr(created)
    credentials = await keys.api_key_credentials(world.deps, key.key_id)
    assert (credentials.secret, credentials.user_id, credentials.roles) == (key.secret, user_id, ["buyer"])
    [listed] = await keys.list_api_keys(world.deps, user_id)
    assert "secret" not in listed

    await keys.revoke_api_key(world.deps, caller, key.key_id)
    await keys.revoke_api_key(world.deps, caller, key.key_id)  # twice is fine
    assert len(world.uow.emitted(ApiKeyRevoked)) == 1 and world.denylist.revoked_keys == {key.key_id}
    assert (await problem_of(keys.api_key_credentials(world.deps, key.key_id))).status_code == 404
    stranger = world.caller(await world.account("bob@example.com"))
    assert (await problem_of(keys.revoke_api_key(world.deps, stranger, key.key_id))).status_code == 404


async def test_active_keys_are_limited(world: World) -> None:
    caller = world.caller(await world.account())
    for i in range(world.settings.api_keys_per_user):
        await keys.create_api_key(world.deps, caller, f"k{i}")
    too_many = await problem_of(keys.create_api_key(world.deps, caller, "one more"))
    assert (too_many.status_code, too_many.slug) == (409, "too-many-api-keys")
    assert (await problem_of(keys.create_api_key(world.deps, caller, " "))).status_code == 422


# -- admin --------------------------------------------------------------------------------------


async def test_admin_level_change_emits_the_event_with_the_previous_level(world: World) -> None:
    user_id = await world.account()
    view = await admin.set_level(world.deps, user_id, "vip")
    assert view["level"] == "vip" and world.store.users[user_id]["level"] == "vip"
    [changed] = world.uow.emitted(LevelChanged)
    assert (changed.user_id, changed.level, changed.previous_level) == (user_id, "vip", "retail")

    # The gateway learns the current claims at once (tokens issued before are re-minted).
    assert world.denylist.claims[user_id][1:] == ("vip", ["buyer"])

    await admin.set_level(world.deps, user_id, "vip")  # no change, no event
    assert len(world.uow.emitted(LevelChanged)) == 1
    assert (await problem_of(admin.set_level(world.deps, user_id, "platinum"))).status_code == 422
    assert (await problem_of(admin.set_level(world.deps, "nobody", "vip"))).status_code == 404


async def test_admin_roles_change_and_no_self_demotion(world: World) -> None:
    boss = await world.account("boss@example.com", roles=["admin"])
    user_id = await world.account()
    boss_caller = world.caller(boss, roles=("admin",))
    view = await admin.set_roles(world.deps, boss_caller, user_id, ["staff", "buyer", "staff"])
    assert view["roles"] == ["buyer", "staff"]
    [changed] = world.uow.emitted(RolesChanged)
    assert changed.roles == ["buyer", "staff"]
    assert world.denylist.claims[user_id][1:] == ("retail", ["buyer", "staff"])
    assert (await problem_of(admin.set_roles(world.deps, boss_caller, user_id, ["root"]))).status_code == 422
    demote = await problem_of(admin.set_roles(world.deps, boss_caller, boss, ["buyer"]))
    assert (demote.status_code, demote.slug) == (409, "cannot-demote-self")
    assert world.store.users[boss]["roles"] == ["admin"]


async def test_bootstrap_admin_is_created_once(world: World) -> None:
    world.deps.settings = IdentitySettings(
        KAMENG_ADMIN_EMAIL="Root@Example.com",
        KAMENG_ADMIN_PASSWORD="a strong admin secret",
        argon2_time_cost=1,
        argon2_memory_kib=64,
    )
    admin_id = await admin.bootstrap_admin(world.deps)
    assert admin_id is not None
    user = world.store.users[admin_id]
    assert (user["email"], user["roles"]) == ("root@example.com", ["admin", "staff"])
    assert await admin.bootstrap_admin(world.deps) is None
    assert len(world.store.users) == 1 and len(world.uow.emitted(UserRegistered)) == 1
