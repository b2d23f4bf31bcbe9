"""Logging in, and turning a session cookie or an API token back into a principal.

Browser sessions: a random token in an HttpOnly cookie, plus a CSRF token the page
echoes in a header (or form field) on every request that changes anything. A session
ends ``session_hours`` after login, or after a quarter of that without use. API tokens
(for scripts) are bearer tokens with an optional expiry, revocable one by one. Both are
stored only as SHA-256 digests.

A login needs the password and, once enabled, a TOTP code; failures are throttled
(:mod:`sprava.accounts.throttle`) and the error never says which part was wrong.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from sprava.accounts import secrets as creds
from sprava.accounts import service, throttle
from sprava.accounts.roles import Capability, Role, capabilities
from sprava.backends.db.account_tables import account, account_session, api_token
from sprava.backends.db.engine import write_transaction
from sprava.catalogue import schema
from sprava.catalogue._record import new_id, page_query, reading, recording
from sprava.domain.catalogue import Page
from sprava.errors import (
    AuthenticationError,
    BadInputError,
    NotFoundError,
    PermissionDeniedError,
)
from sprava.instance import Instance

SESSION_PREFIX = "sps"
TOKEN_PREFIX = "spt"  # noqa: S105  (a prefix that marks tokens, not a secret)
_TOUCH = timedelta(minutes=1)  # last-use times are written at most this often
_WRONG = "wrong user name, password or code"


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as the API sees them."""

    account: service.Account
    via: str  # "session" or "token"
    csrf_token: str | None = None
    session_digest: str | None = None

    @property
    def actor(self) -> str:
        return self.account.actor

    def can(self, capability: Capability) -> bool:
        return capability in capabilities(self.account.role)

    def require(self, capability: Capability) -> None:
        if self.account.must_change_password:
            raise PermissionDeniedError(
                "this account must change its one-time password first",
                code="password-change-required", hint="POST /api/v1/auth/password")
        if not self.can(capability):
            raise PermissionDeniedError(
                f"the {self.account.role} role may not do this", code="forbidden")


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def login(instance: Instance, username: Any, password: Any, code: Any = None, *,
          address: str | None = None) -> tuple[Principal, str]:
    """Check the credentials and open a session; returns the principal and the token.

    Raises AuthenticationError (wrong credentials, or an inactive account),
    TooManyAttemptsError (paused after repeated failures).
    """
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadInputError("give a user name and a password", code="missing-credentials")
    name = username.strip().lower()[:64]
    keys = throttle.keys(name, address)
    limit = instance.settings.login_max_failures
    with write_transaction(instance.engine) as conn:
        throttle.check(conn, keys)
        row = conn.execute(select(account).where(account.c.username == name)).first()
    cost = creds.PasswordCost.of(instance.settings)
    ok = creds.verify_password(row.password_hash if row else None, password, cost)
    step = None
    if ok and row is not None and row.totp_enabled:
        step = creds.totp_step(row.totp_secret, code, last_step=row.totp_last_step)
        ok = step is not None
    if not ok or row is None or not row.active:
        with write_transaction(instance.engine) as conn:
            throttle.failed(conn, keys, limit)
        raise AuthenticationError(_WRONG, code="login-failed")
    token, digest = creds.new_token(SESSION_PREFIX)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    lifetime = timedelta(hours=instance.settings.session_hours)
    with write_transaction(instance.engine) as conn:
        throttle.succeeded(conn, name)
        changes: dict[str, Any] = {}
        if step is not None:
            changes["totp_last_step"] = step
        if creds.needs_rehash(row.password_hash, cost):
            changes["password_hash"] = creds.hash_generated(password, cost)
        if changes:
            conn.execute(update(account).where(account.c.id == row.id).values(**changes))
        conn.execute(delete(account_session).where(account_session.c.expires_at < now))
        conn.execute(insert(account_session).values(
            token_sha256=digest, account_id=row.id, csrf_token=csrf, created_at=now,
            expires_at=now + lifetime, last_seen_at=now))
    return Principal(service.from_row(row), "session", csrf, digest), token


def logout(instance: Instance, principal: Principal) -> None:
    if principal.session_digest is None:
        return
    with write_transaction(instance.engine) as conn:
        conn.execute(delete(account_session)
                     .where(account_session.c.token_sha256 == principal.session_digest))


def from_session(instance: Instance, token: str) -> Principal:
    """The principal of a session cookie; AuthenticationError if it is unknown or over."""
    digest = creds.token_digest(token)
    now = datetime.now(UTC)
    idle = timedelta(hours=instance.settings.session_hours / 4)
    with reading(instance) as conn:
        row = conn.execute(
            select(account, account_session.c.csrf_token, account_session.c.expires_at,
                   account_session.c.last_seen_at)
            .select_from(account_session.join(account,
                                              account.c.id == account_session.c.account_id))
            .where(account_session.c.token_sha256 == digest)).first()
    if row is None or not row.active or row.expires_at <= now or row.last_seen_at + idle <= now:
        raise AuthenticationError("the session has ended; log in again",
                                  code="session-ended")
    if now - row.last_seen_at > _TOUCH:
        with write_transaction(instance.engine) as conn:
            conn.execute(update(account_session)
                         .where(account_session.c.token_sha256 == digest)
                         .values(last_seen_at=now))
    return Principal(service.from_row(row), "session", row.csrf_token, digest)


def from_token(instance: Instance, token: str) -> Principal:
    """The principal of an API token; AuthenticationError if unknown, revoked or expired."""
    digest = creds.token_digest(token)
    now = datetime.now(UTC)
    with reading(instance) as conn:
        row = conn.execute(
            select(account, api_token.c.id.label("token_id"), api_token.c.expires_at,
                   api_token.c.revoked_at, api_token.c.last_used_at)
            .select_from(api_token.join(account, account.c.id == api_token.c.account_id))
            .where(api_token.c.token_sha256 == digest)).first()
    if (row is None or not row.active or row.revoked_at is not None
            or (row.expires_at is not None and row.expires_at <= now)):
        raise AuthenticationError("the API token is unknown, revoked or expired",
                                  code="bad-token")
    if row.last_used_at is None or now - row.last_used_at > _TOUCH:
        with write_transaction(instance.engine) as conn:
            conn.execute(update(api_token).where(api_token.c.id == row.token_id)
                         .values(last_used_at=now))
    return Principal(service.from_row(row), "token")


def _token_from_row(row: Any) -> ApiToken:
    return ApiToken(row.id, row.name, row.created_at, row.expires_at, row.revoked_at,
                    row.last_used_at)


def create_token(instance: Instance, principal: Principal, data: Any) -> tuple[ApiToken, str]:
    """A new API token for the principal's own account: ``{"name", "expires_days"?}``.

    The token is returned once; only its digest is kept.
    """
    values = schema.fields(data, "token", {"name", "expires_days"}, required={"name"})
    name = schema.text(values["name"], "name", limit=100)
    days = values.get("expires_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 1 <= days <= 3650):
        raise BadInputError("expires_days: a whole number from 1 to 3650",
                            code="bad-field")
    token, digest = creds.new_token(TOKEN_PREFIX)
    with recording(instance, principal.actor) as rec:
        found = ApiToken(new_id(), name, rec.now,
                         rec.now + timedelta(days=days) if days else None, None, None)
        rec.conn.execute(insert(api_token).values(
            id=found.id, account_id=principal.account.id, name=name, token_sha256=digest,
            created_at=rec.now, expires_at=found.expires_at))
        rec.record("token-create", service.ENTITY, principal.account.id,
                   {"token_id": found.id, "nonce": secrets.token_hex(16)})
    return found, token


def list_tokens(instance: Instance, principal: Principal, *, limit: int = 50,
                offset: int = 0) -> Page[ApiToken]:
    query = (select(api_token).where(api_token.c.account_id == principal.account.id)
             .order_by(api_token.c.created_at.desc(), api_token.c.id))
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
    return Page(tuple(_token_from_row(r) for r in rows), total, limit, offset)


def revoke_token(instance: Instance, principal: Principal, token_id: str) -> ApiToken:
    """Revoke one of the principal's tokens (a coordinator may revoke anyone's)."""
    token_id = schema.entity_id(token_id, "token_id")
    with recording(instance, principal.actor) as rec:
        row = rec.conn.execute(select(api_token).where(api_token.c.id == token_id)).first()
        if row is None or (row.account_id != principal.account.id
                           and principal.account.role is not Role.COORDINATOR):
            raise NotFoundError(f"no token {token_id}", code="token-not-found")
        if row.revoked_at is None:
            rec.conn.execute(update(api_token).where(api_token.c.id == token_id)
                             .values(revoked_at=rec.now))
            rec.record("token-revoke", service.ENTITY, row.account_id,
                       {"token_id": token_id, "nonce": secrets.token_hex(16)})
        row = rec.conn.execute(select(api_token).where(api_token.c.id == token_id)).one()
    return _token_from_row(row)


def change_password(instance: Instance, principal: Principal, current: Any, new: Any) -> None:
    """Change one's own password (needs the current one); other sessions end."""
    new_password = creds.check_password_policy(new)
    with reading(instance) as conn:
        row = conn.execute(select(account).where(account.c.id == principal.account.id)).one()
    if not creds.verify_password(row.password_hash, current if isinstance(current, str)
                                 else ""):
        raise AuthenticationError("the current password is wrong", code="login-failed")
    if creds.verify_password(row.password_hash, new_password):
        raise BadInputError("the new password must differ from the current one",
                            code="weak-password")
    with recording(instance, principal.actor) as rec:
        rec.conn.execute(update(account).where(account.c.id == row.id).values(
            password_hash=creds.hash_password(new_password,
                                              creds.PasswordCost.of(instance.settings)),
            must_change_password=False,
            updated_at=rec.now))
        keep = principal.session_digest or ""
        rec.conn.execute(delete(account_session).where(
            account_session.c.account_id == row.id, account_session.c.token_sha256 != keep))
        rec.record("password-change", service.ENTITY, row.id,
                   {"nonce": secrets.token_hex(16)})


def totp_begin(instance: Instance, principal: Principal) -> tuple[str, str]:
    """A new TOTP secret for one's own account (not yet required): secret and otpauth URI."""
    secret = creds.new_totp_secret()
    with write_transaction(instance.engine) as conn:
        row = conn.execute(select(account.c.totp_enabled)
                           .where(account.c.id == principal.account.id)).one()
        if row.totp_enabled:
            raise BadInputError("a second factor is already enabled", code="totp-enabled",
                                hint="disable it first (needs the password and a code)")
        conn.execute(update(account).where(account.c.id == principal.account.id)
                     .values(totp_secret=secret, totp_last_step=None))
    return secret, creds.totp_uri(secret, principal.account.username, instance.origin)


def totp_enable(instance: Instance, principal: Principal, code: Any) -> None:
    """Require TOTP from now on, once a code from the new secret proves the app has it."""
    with recording(instance, principal.actor) as rec:
        row = rec.conn.execute(select(account).where(account.c.id == principal.account.id)
                               ).one()
        if row.totp_secret is None or row.totp_enabled:
            raise BadInputError("start the set-up first (POST /api/v1/auth/totp)",
                                code="totp-not-started")
        step = creds.totp_step(row.totp_secret, code, last_step=row.totp_last_step)
        if step is None:
            raise BadInputError("the code does not match; check the phone's clock",
                                code="bad-totp-code")
        rec.conn.execute(update(account).where(account.c.id == row.id).values(
            totp_enabled=True, totp_last_step=step, updated_at=rec.now))
        rec.record("totp-enable", service.ENTITY, row.id, {"nonce": secrets.token_hex(16)})


def totp_disable(instance: Instance, principal: Principal, password: Any, code: Any) -> None:
    with recording(instance, principal.actor) as rec:
        row = rec.conn.execute(select(account).where(account.c.id == principal.account.id)
                               ).one()
        ok = creds.verify_password(row.password_hash, password if isinstance(password, str)
                                   else "")
        if ok and row.totp_enabled:
            ok = creds.totp_step(row.totp_secret, code, last_step=row.totp_last_step) \
                is not None
        if not ok:
            raise AuthenticationError(_WRONG, code="login-failed")
        rec.conn.execute(update(account).where(account.c.id == row.id).values(
            totp_enabled=False, totp_secret=None, totp_last_step=None, updated_at=rec.now))
        rec.record("totp-disable", service.ENTITY, row.id, {"nonce": secrets.token_hex(16)})
