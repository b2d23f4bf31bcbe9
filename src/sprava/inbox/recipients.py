"""Who receives the inbox, their keys, and unlocking a key for one session.

A coordinator assigns accounts (coordinators or investigators) as recipients. Each
recipient then sets up an age key pair in one of two ways:

* **on the server** (GlobaLeaks' model): ``{"password"}``: the server generates the key
  pair and keeps the private key sealed under Argon2id of the account's password. The
  recipient unlocks it for one session (``POST /api/v1/inbox/unlock``) to read in the
  browser; it is then sealed again under the session's secret (see
  :mod:`sprava.inbox.keys`).
* **offline** (SecureDrop's model): ``{"public_key": "age1…"}``: a key made with
  ``age-keygen`` on the recipient's own machine. The server never sees the private key;
  the recipient reads what ``sprava inbox export`` writes with the ``age`` tool.

New content is encrypted to every recipient with a key *at the time it arrives*. Whoever
is assigned later cannot read what came before (nobody can re-encrypt without opening
it); whoever is removed keeps no access through the server.

A password change does not reseal the key by itself: unlock once with the old password
and ``new_password`` to move it over. A password *reset* by a coordinator loses the key
held on the server (that is the point of sealing it with the password): the recipient
sets up a new one, and reads older material through other recipients or an export.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyrage
from sqlalchemy import delete, insert, select, update

from sprava.accounts import secrets as creds
from sprava.accounts import throttle
from sprava.accounts.roles import Capability, Role, capabilities
from sprava.accounts.sessions import Principal
from sprava.backends.db.account_tables import account
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.inbox_tables import inbox_recipient, inbox_unlock
from sprava.catalogue import schema
from sprava.catalogue._record import recording
from sprava.errors import (
    AuthenticationError,
    BadInputError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from sprava.inbox import age
from sprava.inbox.keys import open_for_session, seal_for_session, unwrap_identity, wrap_identity
from sprava.inbox.service import Inbox

ENTITY = "inbox-recipient"


@dataclass(frozen=True)
class RecipientInfo:
    account_id: str
    username: str
    public_key: str | None
    key_on_server: bool
    assigned_at: datetime
    key_set_at: datetime | None


def _info(row: Any) -> RecipientInfo:
    return RecipientInfo(row.account_id, row.username, row.public_key,
                         row.wrapped_key is not None, row.assigned_at, row.key_set_at)


def list_recipients(inbox: Inbox) -> list[RecipientInfo]:
    with read_transaction(inbox.instance.engine) as conn:
        rows = conn.execute(select(inbox_recipient, account.c.username)
                            .join(account, account.c.id == inbox_recipient.c.account_id)
                            .order_by(account.c.username)).all()
    return [_info(r) for r in rows]


def _row(conn: Any, account_id: str) -> Any:
    return conn.execute(select(inbox_recipient, account.c.username)
                        .join(account, account.c.id == inbox_recipient.c.account_id)
                        .where(inbox_recipient.c.account_id == account_id)).first()


def assign(inbox: Inbox, principal: Principal, data: Any) -> RecipientInfo:
    """Make an account a recipient: ``{"account_id"}``. Only roles with the INBOX
    capability may be; raises NotFoundError, BadInputError ``not-eligible``,
    ConflictError ``already-recipient``."""
    values = schema.fields(data, "recipient", {"account_id"}, required={"account_id"})
    account_id = schema.entity_id(values["account_id"], "account_id")
    with recording(inbox.instance, principal.actor) as rec:
        target = rec.conn.execute(select(account).where(account.c.id == account_id)).first()
        if target is None:
            raise NotFoundError(f"no account {account_id}", code="account-not-found")
        if not target.active or Capability.INBOX not in capabilities(Role(target.role)):
            raise BadInputError("only active coordinators and investigators can receive "
                                "the inbox", code="not-eligible")
        if _row(rec.conn, account_id) is not None:
            raise ConflictError("this account is already a recipient",
                                code="already-recipient")
        rec.conn.execute(insert(inbox_recipient).values(
            account_id=account_id, public_key=None, wrapped_key=None,
            assigned_by=principal.actor, assigned_at=rec.now, key_set_at=None))
        rec.record("assign", ENTITY, account_id,
                   {"nonce": secrets.token_hex(16)})
        return _info(_row(rec.conn, account_id))


def unassign(inbox: Inbox, principal: Principal, account_id: str) -> None:
    """Stop an account receiving: its key (and any unlocked copy) is deleted."""
    account_id = schema.entity_id(account_id, "account_id")
    with recording(inbox.instance, principal.actor) as rec:
        if _row(rec.conn, account_id) is None:
            raise NotFoundError("this account is not a recipient", code="not-a-recipient")
        rec.conn.execute(delete(inbox_unlock).where(inbox_unlock.c.account_id == account_id))
        rec.conn.execute(delete(inbox_recipient)
                         .where(inbox_recipient.c.account_id == account_id))
        rec.record("remove", ENTITY, account_id,
                   {"nonce": secrets.token_hex(16)})


def _own(conn: Any, principal: Principal) -> Any:
    row = _row(conn, principal.account.id)
    if row is None:
        raise PermissionDeniedError("this account does not receive the inbox",
                                    code="not-a-recipient",
                                    hint="a coordinator assigns recipients")
    return row


def require_recipient(inbox: Inbox, principal: Principal) -> None:
    principal.require(Capability.INBOX)
    with read_transaction(inbox.instance.engine) as conn:
        _own(conn, principal)


def set_key(inbox: Inbox, principal: Principal, data: Any) -> RecipientInfo:
    """Set up one's own key: ``{"password"}`` (kept on the server, sealed) or
    ``{"public_key"}`` (held offline); ``"replace": true`` to change an existing key.

    Raises AuthenticationError ``login-failed`` (wrong password), BadInputError
    ``bad-age-key``, ConflictError ``key-exists``.
    """
    values = schema.fields(data, "key", {"password", "public_key", "replace"})
    replace = schema.boolean(values.get("replace", False), "replace")
    if ("password" in values) == ("public_key" in values):
        raise BadInputError("give either password (a key kept on the server) or public_key "
                            "(a key you hold offline)", code="bad-field")
    wrapped: bytes | None = None
    if "public_key" in values:
        text = values["public_key"]
        if not isinstance(text, str) or len(text) > 200:
            raise BadInputError("public_key: an age public key (age1…)", code="bad-age-key")
        try:
            pyrage.x25519.Recipient.from_str(text.strip())  # the reference parser agrees
        except Exception:
            raise BadInputError("public_key: not an age X25519 public key",
                                code="bad-age-key",
                                hint="make one with age-keygen; give the age1… line") from None
        public = str(age.Recipient.parse(text))
    else:
        password = values["password"]
        with read_transaction(inbox.instance.engine) as conn:
            stored = conn.execute(select(account.c.password_hash)
                                  .where(account.c.id == principal.account.id)).scalar_one()
        if not isinstance(password, str) or not creds.verify_password(stored, password):
            raise AuthenticationError("the password is wrong", code="login-failed")
        identity = age.Identity.parse(str(pyrage.x25519.Identity.generate()))
        public = str(identity.recipient)
        wrapped = wrap_identity(identity, password, principal.account.id, inbox.kdf,
                                inbox.params)
    with recording(inbox.instance, principal.actor) as rec:
        row = _own(rec.conn, principal)
        if row.public_key is not None and not replace:
            raise ConflictError("this account already has an inbox key", code="key-exists",
                                hint='send "replace": true to replace it (content sent '
                                     "to the old key stays readable only with it)")
        rec.conn.execute(update(inbox_recipient)
                         .where(inbox_recipient.c.account_id == principal.account.id)
                         .values(public_key=public, wrapped_key=wrapped, key_set_at=rec.now))
        rec.conn.execute(delete(inbox_unlock)
                         .where(inbox_unlock.c.account_id == principal.account.id))
        rec.record("key-set", ENTITY, principal.account.id,
                   {"public_key": public, "nonce": secrets.token_hex(16)})
        return _info(_row(rec.conn, principal.account.id))


def unlock(inbox: Inbox, principal: Principal, credential: str, data: Any) -> None:
    """Open one's key with ``{"password", "new_password"?}`` for this session or token.

    ``new_password`` reseals the key under it (after a password change). Failures are
    throttled like logins. Raises AuthenticationError ``wrong-password``,
    TooManyAttemptsError, BadInputError ``key-offline``.
    """
    values = schema.fields(data, "unlock", {"password", "new_password"},
                           required={"password"})
    password = values["password"]
    if not isinstance(password, str) or len(password) > creds.MAX_PASSWORD:
        raise BadInputError("password: text", code="bad-field")
    new_password = values.get("new_password")
    if new_password is not None:
        creds.check_password_policy(new_password)
    keys = [f"inbox-unlock:{principal.account.id}"]
    with write_transaction(inbox.instance.engine) as conn:
        throttle.check(conn, keys)
        row = _own(conn, principal)
    if row.wrapped_key is None:
        raise BadInputError("your inbox key is held offline, not on the server",
                            code="key-offline",
                            hint="read exported submissions with the age tool")
    try:
        identity = unwrap_identity(row.wrapped_key, password, principal.account.id,
                                   inbox.kdf)
    except AuthenticationError:
        with write_transaction(inbox.instance.engine) as conn:
            throttle.failed(conn, keys, inbox.settings.login_max_failures)
        raise
    now = datetime.now(UTC)
    with write_transaction(inbox.instance.engine) as conn:
        if new_password is not None:
            conn.execute(update(inbox_recipient)
                         .where(inbox_recipient.c.account_id == principal.account.id)
                         .values(wrapped_key=wrap_identity(identity, new_password,
                                                           principal.account.id, inbox.kdf,
                                                           inbox.params)))
        digest = creds.token_digest(credential)
        conn.execute(delete(inbox_unlock).where(
            (inbox_unlock.c.credential_sha256 == digest) | (inbox_unlock.c.expires_at < now)))
        conn.execute(insert(inbox_unlock).values(
            credential_sha256=digest, account_id=principal.account.id,
            sealed_key=seal_for_session(identity, credential),
            expires_at=now + timedelta(hours=inbox.settings.session_hours)))


def lock(inbox: Inbox, credential: str) -> None:
    with write_transaction(inbox.instance.engine) as conn:
        conn.execute(delete(inbox_unlock).where(
            inbox_unlock.c.credential_sha256 == creds.token_digest(credential)))


def session_identity(inbox: Inbox, principal: Principal, credential: str) -> age.Identity:
    """The unlocked key of this session; PermissionDeniedError ``inbox-locked`` if none."""
    with read_transaction(inbox.instance.engine) as conn:
        _own(conn, principal)
        row = conn.execute(select(inbox_unlock).where(
            inbox_unlock.c.credential_sha256 == creds.token_digest(credential),
            inbox_unlock.c.account_id == principal.account.id)).first()
    identity = None
    if row is not None and row.expires_at > datetime.now(UTC):
        identity = open_for_session(row.sealed_key, credential)
    if identity is None:
        raise PermissionDeniedError("unlock your inbox key for this session first",
                                    code="inbox-locked",
                                    hint="POST /api/v1/inbox/unlock with your password")
    return identity
