"""Accounts on each real database: creation, roles, the last coordinator, throttled
logins, sessions that end, tokens that are revoked, and every change on the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from sprava.accounts import service, sessions
from sprava.accounts.roles import Capability, Role
from sprava.audit import verify_instance
from sprava.backends.db.account_tables import account_session, login_throttle
from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.errors import (
    AuthenticationError,
    BadInputError,
    ConflictError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from sprava.instance import Instance

PASSWORD = "a perfectly fine passphrase"  # noqa: S105


def _make(instance: Instance, name: str, role: str = "investigator", **extra: object
          ) -> service.Account:
    acc, _ = service.create_account(instance, {"username": name, "role": role,
                                               "password": PASSWORD, **extra},
                                    actor="local:test")
    return acc


def test_first_coordinator_is_made_once_with_a_one_time_password(instance: Instance) -> None:
    first = service.ensure_first_coordinator(instance)
    assert first is not None
    name, password = first
    assert service.ensure_first_coordinator(instance) is None
    principal, _token = sessions.login(instance, name, password)
    assert principal.account.role is Role.COORDINATOR
    assert principal.account.must_change_password
    with pytest.raises(PermissionDeniedError, match="one-time password"):
        principal.require(Capability.CATALOGUE_READ)
    sessions.change_password(instance, principal, password, PASSWORD)
    again, _ = sessions.login(instance, name, PASSWORD)
    assert not again.account.must_change_password


def test_usernames_are_pseudonyms_of_a_fixed_alphabet(instance: Instance) -> None:
    for bad in ("A", "Anna", "анна", "a b", "-x", "x" * 65, "", None):
        with pytest.raises(BadInputError, match=r"user name|required"):
            service.create_account(instance, {"username": bad, "role": "viewer"},
                                   actor="local:test")
    _make(instance, "anna.k")
    with pytest.raises(ConflictError, match="already"):
        _make(instance, "anna.k")


def test_red_line_fields_are_refused_on_accounts(instance: Instance) -> None:
    with pytest.raises(BadInputError, match="refused") as caught:
        service.create_account(instance, {"username": "x1", "role": "viewer",
                                          "phone": "+375 29 000"}, actor="local:test")
    assert caught.value.code == "red-line-field"


def test_review_rights_follow_the_role(instance: Instance) -> None:
    assert _make(instance, "c1", "coordinator").may_review
    assert _make(instance, "i1", "investigator", reviewer=True).may_review
    assert not _make(instance, "i2", "investigator").may_review
    viewer = _make(instance, "v1", "viewer", reviewer=True)
    assert not viewer.reviewer
    assert not viewer.may_review


def test_last_active_coordinator_cannot_be_removed(instance: Instance) -> None:
    only = _make(instance, "boss", "coordinator")
    for change in ({"role": "viewer"}, {"active": False}):
        with pytest.raises(ConflictError, match="last active coordinator"):
            service.update_account(instance, only.id, change, actor="local:test")
    _make(instance, "deputy", "coordinator")
    assert service.update_account(instance, only.id, {"role": "viewer"},
                                  actor="local:test").role is Role.VIEWER


def test_deactivation_ends_sessions_and_tokens(instance: Instance) -> None:
    acc = _make(instance, "leaver")
    principal, cookie = sessions.login(instance, "leaver", PASSWORD)
    _, token = sessions.create_token(instance, principal, {"name": "script"})
    assert sessions.from_token(instance, token).account.id == acc.id
    service.update_account(instance, acc.id, {"active": False}, actor="local:test")
    with pytest.raises(AuthenticationError):
        sessions.from_token(instance, token)
    with pytest.raises(AuthenticationError):
        sessions.from_session(instance, cookie)
    with pytest.raises(AuthenticationError, match="wrong"):
        sessions.login(instance, "leaver", PASSWORD)


def test_wrong_credentials_say_nothing_about_which_part(instance: Instance) -> None:
    _make(instance, "anna")
    with pytest.raises(AuthenticationError) as wrong_password:
        sessions.login(instance, "anna", "not the password at all")
    with pytest.raises(AuthenticationError) as wrong_name:
        sessions.login(instance, "nobody", PASSWORD)
    assert wrong_password.value.message == wrong_name.value.message


def test_logins_are_paused_after_repeated_failures(instance: Instance) -> None:
    _make(instance, "anna")
    limit = instance.settings.login_max_failures
    for _ in range(limit):
        with pytest.raises(AuthenticationError):
            sessions.login(instance, "anna", "not the password at all", address="10.0.0.9")
    with pytest.raises(TooManyAttemptsError) as paused:
        sessions.login(instance, "anna", PASSWORD, address="10.0.0.7")
    assert 0 < paused.value.retry_after <= 60
    # The address that guessed is paused for other names too.
    _make(instance, "boris")
    with pytest.raises(TooManyAttemptsError):
        sessions.login(instance, "boris", PASSWORD, address="10.0.0.9")
    # Once the pause is over, the right password works and clears the account's count.
    with instance.engine.begin() as conn:
        conn.execute(update(login_throttle).values(
            locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    sessions.login(instance, "anna", PASSWORD, address="10.0.0.7")
    with instance.engine.connect() as conn:
        keys = set(conn.execute(select(login_throttle.c.key)).scalars())
    assert "account:anna" not in keys


def test_sessions_end_after_their_lifetime_and_when_idle(instance: Instance) -> None:
    _make(instance, "anna")
    _principal, cookie = sessions.login(instance, "anna", PASSWORD)
    assert sessions.from_session(instance, cookie).account.username == "anna"
    past = datetime.now(UTC) - timedelta(hours=instance.settings.session_hours)
    with instance.engine.begin() as conn:
        conn.execute(update(account_session).values(last_seen_at=past))
    with pytest.raises(AuthenticationError, match="ended"):
        sessions.from_session(instance, cookie)
    _principal, cookie = sessions.login(instance, "anna", PASSWORD)
    with instance.engine.begin() as conn:
        conn.execute(update(account_session).values(expires_at=datetime.now(UTC)))
    with pytest.raises(AuthenticationError, match="ended"):
        sessions.from_session(instance, cookie)


def test_tokens_expire_and_are_revoked_one_by_one(instance: Instance) -> None:
    _make(instance, "anna")
    principal, _ = sessions.login(instance, "anna", PASSWORD)
    _kept, kept_secret = sessions.create_token(instance, principal, {"name": "a"})
    gone, gone_secret = sessions.create_token(instance, principal,
                                              {"name": "b", "expires_days": 1})
    assert gone.expires_at is not None
    sessions.revoke_token(instance, principal, gone.id)
    with pytest.raises(AuthenticationError):
        sessions.from_token(instance, gone_secret)
    assert sessions.from_token(instance, kept_secret).account.username == "anna"
    assert sessions.list_tokens(instance, principal).total == 2
    with pytest.raises(BadInputError, match="expires_days"):
        sessions.create_token(instance, principal, {"name": "c", "expires_days": 0})


def test_account_changes_are_custody_events_and_verify(instance: Instance) -> None:
    acc = _make(instance, "anna")
    service.update_account(instance, acc.id, {"reviewer": True}, actor="local:test")
    service.reset_password(instance, acc.id, actor="local:test")
    with instance.engine.connect() as conn:
        rows = conn.execute(select(catalogue_change.c.change, catalogue_change.c.actor)
                            .where(catalogue_change.c.entity == "account",
                                   catalogue_change.c.entity_id == acc.id)
                            .order_by(catalogue_change.c.leaf_index)).all()
    assert [tuple(r) for r in rows] == [("create", "local:test"), ("update", "local:test"),
                                        ("password-reset", "local:test")]
    report = verify_instance(instance)
    assert report.ok, report.findings


def test_a_password_hashed_at_another_cost_is_hashed_again_at_login(
        instance: Instance) -> None:
    from sprava.backends.db.account_tables import account
    from sprava.instance import open_instance
    from sprava.settings import load_settings

    acc = _make(instance, "moved")  # at the test instances' cost (conftest.CHEAP_PASSWORDS)

    def stored() -> str:
        with instance.engine.connect() as conn:
            return str(conn.execute(select(account.c.password_hash)
                                    .where(account.c.id == acc.id)).scalar_one())

    assert "$m=1024,t=1," in stored()
    default = open_instance(load_settings(instance.settings.home, {
        "password_kdf_memory_mb": 64, "password_kdf_passes": 3}, environ={}))
    try:
        sessions.login(default, "moved", PASSWORD)
    finally:
        default.close()
    assert "$m=65536,t=3," in stored()
    sessions.login(instance, "moved", PASSWORD)  # and back: still the same password
    assert "$m=1024,t=1," in stored()
