"""Creating and changing accounts; each change is a custody event (entity ``account``).

An account is a user name and a role: nothing about the person behind it (see
:mod:`sprava.backends.db.account_tables`). A new account gets a one-time password that
must be changed at first login. The last active coordinator cannot be demoted or
deactivated, so an instance can never lock its own administrators out.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from sprava.accounts import secrets as creds
from sprava.accounts.roles import MAY_REVIEW, Role
from sprava.backends.db.account_tables import account, account_session, api_token
from sprava.catalogue import schema
from sprava.catalogue._record import Recorder, new_id, page_query, reading, recording
from sprava.domain.catalogue import Page
from sprava.errors import BadInputError, ConflictError, NotFoundError
from sprava.instance import Instance

ENTITY = "account"
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
FIRST_COORDINATOR = "coordinator"


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    role: Role
    reviewer: bool
    active: bool
    totp_enabled: bool
    must_change_password: bool
    created_at: datetime
    updated_at: datetime

    @property
    def actor(self) -> str:
        """How custody events name this account."""
        return actor_of(self.username)

    @property
    def may_review(self) -> bool:
        return self.active and self.role in MAY_REVIEW and (
            self.reviewer or self.role is Role.COORDINATOR)

    def state(self) -> dict[str, Any]:
        return {"username": self.username, "role": str(self.role), "reviewer": self.reviewer,
                "active": self.active}


def actor_of(username: str) -> str:
    return f"user:{username}"


def check_username(value: object) -> str:
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise BadInputError(
            "a user name has 2 to 64 characters: lower-case Latin letters, digits, "
            "'.', '_' or '-', starting with a letter or digit", code="bad-username",
            hint="pick a pseudonym, not a real name: accounts are on the record")
    return value


def check_role(value: object) -> Role:
    return schema.enum(value, "role", Role, [str(r) for r in Role])


def from_row(row: Any) -> Account:
    return Account(id=row.id, username=row.username, role=Role(row.role),
                   reviewer=bool(row.reviewer), active=bool(row.active),
                   totp_enabled=bool(row.totp_enabled),
                   must_change_password=bool(row.must_change_password),
                   created_at=row.created_at, updated_at=row.updated_at)


def fetch(conn: Connection, account_id: str) -> Account:
    row = conn.execute(select(account).where(account.c.id == account_id)).first()
    if row is None:
        raise NotFoundError(f"no account {account_id}", code="account-not-found")
    return from_row(row)


def _record(rec: Recorder, change: str, acc: Account) -> None:
    # The state carries a nonce: account states are few and guessable, and the ledger
    # travels in case files.
    rec.record(change, ENTITY, acc.id, {**acc.state(), "nonce": secrets.token_hex(16)})


def _insert(rec: Recorder, username: str, role: Role, reviewer: bool,
            password: str | None, cost: creds.PasswordCost) -> tuple[Account, str | None]:
    one_time = None
    if password is None:
        one_time = password = creds.one_time_password()
        password_hash = creds.hash_generated(password, cost)
    else:
        password_hash = creds.hash_password(password, cost)
    if rec.conn.execute(select(account.c.id).where(account.c.username == username)).first():
        raise ConflictError(f"there is already an account named {username}",
                            code="username-taken")
    acc = Account(id=new_id(), username=username, role=role,
                  reviewer=reviewer and role in MAY_REVIEW, active=True, totp_enabled=False,
                  must_change_password=one_time is not None, created_at=rec.now,
                  updated_at=rec.now)
    rec.conn.execute(insert(account).values(
        id=acc.id, username=acc.username, role=str(acc.role), reviewer=acc.reviewer,
        active=True, password_hash=password_hash,
        must_change_password=acc.must_change_password, totp_secret=None,
        totp_enabled=False, totp_last_step=None, created_at=rec.now, updated_at=rec.now))
    _record(rec, "create", acc)
    return acc, one_time


def create_account(instance: Instance, data: Any, *, actor: str) -> tuple[Account, str | None]:
    """A new account from ``{"username", "role", "reviewer"?, "password"?}``.

    Without a password a one-time password is generated, returned once, and must be
    changed at first login. Raises ConflictError ``username-taken``.
    """
    values = schema.fields(data, "account", {"username", "role", "reviewer", "password"},
                           required={"username", "role"})
    username = check_username(values["username"])
    role = check_role(values["role"])
    reviewer = schema.boolean(values.get("reviewer", False), "reviewer")
    password = values.get("password")
    if password is not None:
        creds.check_password_policy(password)
    with recording(instance, actor) as rec:
        return _insert(rec, username, role, reviewer, password,
                       creds.PasswordCost.of(instance.settings))


def ensure_first_coordinator(instance: Instance) -> tuple[str, str] | None:
    """On a server's first start: a coordinator with a one-time password, once.

    Returns the user name and password to print, or None if any account exists.
    """
    with recording(instance, "sprava:serve") as rec:
        if rec.conn.execute(select(func.count()).select_from(account)).scalar_one():
            return None
        acc, password = _insert(rec, FIRST_COORDINATOR, Role.COORDINATOR, True, None,
                                creds.PasswordCost.of(instance.settings))
    assert password is not None
    return acc.username, password


def _active_coordinators(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(account).where(
        account.c.role == str(Role.COORDINATOR), account.c.active.is_(True))).scalar_one())


def revoke_access(conn: Connection, account_id: str, now: datetime) -> None:
    """End every session of the account and revoke its API tokens."""
    conn.execute(delete(account_session).where(account_session.c.account_id == account_id))
    conn.execute(update(api_token).where(api_token.c.account_id == account_id,
                                         api_token.c.revoked_at.is_(None))
                 .values(revoked_at=now))


def update_account(instance: Instance, account_id: str, changes: Any, *,
                   actor: str) -> Account:
    """Change ``role``, ``reviewer`` or ``active``. Deactivating ends the account's
    sessions and revokes its tokens. Raises ConflictError ``last-coordinator``."""
    values = schema.fields(changes, "account", {"role", "reviewer", "active"})
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, schema.entity_id(account_id, "account_id"))
        role = check_role(values["role"]) if "role" in values else current.role
        reviewer = (schema.boolean(values["reviewer"], "reviewer") if "reviewer" in values
                    else current.reviewer)
        active = (schema.boolean(values["active"], "active") if "active" in values
                  else current.active)
        reviewer = reviewer and role in MAY_REVIEW
        if (current.role, current.reviewer, current.active) == (role, reviewer, active):
            return current
        if (current.role is Role.COORDINATOR and current.active
                and (role is not Role.COORDINATOR or not active)
                and _active_coordinators(rec.conn) <= 1):
            raise ConflictError("this is the last active coordinator",
                                code="last-coordinator",
                                hint="make another account coordinator first")
        rec.conn.execute(update(account).where(account.c.id == current.id).values(
            role=str(role), reviewer=reviewer, active=active, updated_at=rec.now))
        if not active or role != current.role:
            revoke_access(rec.conn, current.id, rec.now)
        new = fetch(rec.conn, current.id)
        _record(rec, "update", new)
    return new


def reset_password(instance: Instance, account_id: str, *, actor: str) -> str:
    """A new one-time password for the account (its sessions and tokens end)."""
    password = creds.one_time_password()
    password_hash = creds.hash_generated(password, creds.PasswordCost.of(instance.settings))
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, schema.entity_id(account_id, "account_id"))
        rec.conn.execute(update(account).where(account.c.id == current.id).values(
            password_hash=password_hash, must_change_password=True,
            updated_at=rec.now))
        revoke_access(rec.conn, current.id, rec.now)
        _record(rec, "password-reset", fetch(rec.conn, current.id))
    return password


def get_account(instance: Instance, account_id: str) -> Account:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(account_id, "account_id"))


def list_accounts(instance: Instance, *, limit: int = 50, offset: int = 0) -> Page[Account]:
    query = select(account).order_by(account.c.username)
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
    return Page(tuple(from_row(r) for r in rows), total, limit, offset)
