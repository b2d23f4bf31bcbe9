"""Who may do what through the JSON API, on each real database.

The heart of this module is :data:`MATRIX`: every endpoint of the served OpenAPI
description, and for each the roles that may call it, written from shared/DESIGN.md
("Who uses it") and issue 4 ("Accounts and roles"):

* a coordinator runs the instance: everything, accounts and the vocabulary included;
* an investigator ingests, catalogues, links, builds cases and sees persons; review
  rights are separate from the role (``reviewer`` below is an investigator who has them);
* an uploader uploads and sees only their own uploads;
* a viewer reads the catalogue and redacted copies only: no persons, no claims naming a
  person, no originals;
* without a login, only the health check and the login itself answer;
* the insider inbox's endpoints need the ``inbox`` capability (coordinators and
  investigators) and an assignment as recipient by a coordinator, which every staff
  account here has, with its key unlocked for its token.

Something out of a reader's scope is answered as if it did not exist (404), not with a
refusal that would confirm it exists. Each endpoint is called by every role and without a
login against real records, so that an allowed call really succeeds (2xx) and a refused
one is refused (403, or 401 without a login). The table is cross-checked against the
capability table in :mod:`sprava.accounts.roles`, and against the served description, so
that a new endpoint without an entry here fails the suite.

The rules around the matrix follow: scopes of uploaders and viewers, custody events for
every read of a restricted record, due process on claims, CSRF, revoked and deactivated
access, one-time passwords, login throttling and the second factor.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from conftest import API_PASSWORD, API_ROLES, Api, make_api, new_instance
from sprava.accounts import service, sessions
from sprava.accounts.roles import MAY_REVIEW, Capability, Role, capabilities
from sprava.api.app import PREFIX
from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import claims, incidents
from sprava.domain.custody import decode_leaf
from sprava.inbox import age, recipients
from sprava.inbox.service import Inbox
from sprava.store.derive import store_derived

ANON = "anonymous"
ROLES = ("coordinator", "investigator", "reviewer", "uploader", "viewer")
EVERYONE = frozenset(ROLES)
PUBLIC = EVERYONE | {ANON}
STAFF = frozenset({"coordinator", "investigator", "reviewer"})
READERS = STAFF | {"viewer"}
UPLOADERS = STAFF | {"uploader"}
REVIEWERS = frozenset({"coordinator", "reviewer"})
COORDINATOR = frozenset({"coordinator"})
ANY_ITEMS = (Capability.ITEMS_ALL, Capability.ITEMS_OWN, Capability.ITEMS_REDACTED)
AUTHOR = "user:coordinator2"  # writes the claims others review; not a column of the matrix
NEW_PASSWORD = "another plain passphrase 7"  # noqa: S105  (test accounts only)
INCIDENT = {"title": "Dispersal at Pushkinskaya", "start": "2020-08-10T22:40:00+03:00",
            "place": {"name": "Pushkinskaya metro", "admin_area": "Minsk"},
            "violation_types": ["beating"]}


def png(seed: int) -> bytes:
    """A small, distinct PNG (a redaction request needs a picture)."""
    picture = Image.new("RGB", (64, 64), (seed % 256, (seed * 7) % 256, 90))
    for x in range(0, 64, 4):
        for y in range(0, 64, 8):
            picture.putpixel((x, y), ((x * seed) % 256, y * 4, 200))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


@dataclass
class World:
    """One instance per back end with a record of every kind, built once for the module."""

    api: Api
    original: str  # an investigator's upload
    own: dict[str, str]  # uploader account → the item it uploaded
    redacted: str  # a redacted copy of ``original``
    incident: str
    act: str
    unit: str
    person: str
    unit_claim: str  # pending review, names no person
    person_claim: str  # person commanded unit: approved by a second reviewer
    case: str
    target: str  # an account the coordinator changes
    submission: str  # an insider's submission, with one file
    inbox_file: str
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def app(self) -> Any:
        return self.api.client.app  # type: ignore[attr-defined]

    def next(self) -> int:
        return next(self.counter)

    def call(self, method: str, path: str, role: str | None = None, **kwargs: Any) -> Any:
        return self.api.call(method, PREFIX + path, role, **kwargs)

    def ok(self, method: str, path: str, role: str, **kwargs: Any) -> Any:
        response = self.call(method, path, role, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def claim(self, *, about_person: bool = False, submit: bool = True) -> str:
        """A claim written by :data:`AUTHOR` (so that the matrix roles may review it)."""
        subject = ({"kind": "person", "id": self.person} if about_person
                   else {"kind": "unit", "id": self.unit})
        statement = "person_committed_act" if about_person else "unit_committed_act"
        return claims.create_claim(self.api.instance, {
            "statement": statement, "subject": subject,
            "object": {"kind": "act", "id": self.act}, "sources": [self.original],
            "confidence": "medium"}, actor=AUTHOR, submit=submit).id

    def account(self, like: str) -> tuple[Any, str]:
        """A new account with the role (and review rights) of harness account ``like``,
        and a bearer token for it."""
        role, reviewer = API_ROLES[like]
        acc, _ = service.create_account(self.api.instance, {
            "username": f"m{self.next()}-{like}", "role": role, "reviewer": reviewer,
            "password": API_PASSWORD}, actor="local:test")
        _, token = sessions.create_token(self.api.instance, sessions.Principal(acc, "token"),
                                         {"name": "tests"})
        return acc, token

    @property
    def inbox(self) -> Inbox:
        return self.app.state.inbox  # type: ignore[no-any-return]

    def coordinator(self) -> sessions.Principal:
        acc = service.get_account(self.api.instance, self.api.accounts[
            "coordinator"].id)  # type: ignore[attr-defined]
        return sessions.Principal(acc, "token")

    def recipient(self, like: str, *, key: bool = False) -> tuple[Any, str]:
        """A new account like :meth:`account`, assigned as an inbox recipient if its role
        may be one; ``key``: with a key kept on the server."""
        acc, token = self.account(like)
        if Capability.INBOX in capabilities(Role(acc.role)):
            recipients.assign(self.inbox, self.coordinator(), {"account_id": acc.id})
            if key:
                recipients.set_key(self.inbox, sessions.Principal(acc, "token"),
                                   {"password": API_PASSWORD})
        return acc, token

    def client(self, address: str) -> TestClient:
        """A client of its own: its own cookies, and its own address for throttling."""
        return TestClient(self.app, client=(address, 50000))


def _build(api: Api, tmp: Path) -> World:
    def ok(method: str, path: str, role: str, **kwargs: Any) -> Any:
        response = api.call(method, PREFIX + path, role, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    uploaded = {who: ok("POST", "/items", who, params={"name": f"{who}.png"},
                        content=png(i))["sha256"]
                for i, who in enumerate(("investigator", "uploader", "uploader2"), 1)}
    copy = tmp / "redacted.png"
    copy.write_bytes(png(99))
    redacted = store_derived(api.instance, original=uploaded["investigator"],
                             kind="redaction", path=copy, tool="tests",
                             settings={"mode": "blur"}, actor="user:investigator").sha256
    from sprava.media.pipeline import analyse  # perceptual hashes, for /similar

    analyse(api.instance, uploaded["investigator"])
    incident = ok("POST", "/incidents", "investigator", json=INCIDENT)["id"]
    act = ok("POST", "/acts", "investigator", json={"incident_id": incident,
                                                     "type": "beating"})["id"]
    unit = ok("POST", "/units", "investigator", json={
        "names": {"en": "Minsk OMON", "be": "АМАП Мінск"}, "type": "omon"})["id"]
    person = ok("POST", "/persons", "investigator", json={"name": "S. Sidorov",
                                                          "rank": "captain"})["id"]
    person_claim = ok("POST", "/claims", "investigator", params={"submit": "true"}, json={
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person},
        "object": {"kind": "unit", "id": unit}, "sources": [uploaded["investigator"]],
        "confidence": "high", "valid_from": "2020"})["id"]
    ok("POST", f"/claims/{person_claim}/approve", "coordinator", json={"reason": "seen"})
    unit_claim = ok("POST", "/claims", "coordinator2", params={"submit": "true"}, json={
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": unit},
        "object": {"kind": "incident", "id": incident},
        "sources": [uploaded["investigator"]], "confidence": "medium"})["id"]
    case = ok("POST", "/cases", "investigator", json={
        "title": "Pushkinskaya", "recipient": "UN Special Rapporteur",
        "incidents": [incident], "claims": [unit_claim],
        "items": [uploaded["investigator"]]})["id"]
    target = ok("POST", "/users", "coordinator", json={
        "username": "target", "role": "viewer", "password": API_PASSWORD})["account"]["id"]
    submission, inbox_file = _inbox(api, ok)
    return World(api, uploaded["investigator"],
                 {"uploader": uploaded["uploader"], "uploader2": uploaded["uploader2"]},
                 redacted, incident, act, unit, person, unit_claim, person_claim, case, target,
                 submission, inbox_file)


def _inbox(api: Api, ok: Callable[..., Any]) -> tuple[str, str]:
    """Every staff account a recipient with its key unlocked for its token, and one
    insider submission with a file; returns the submission's id and the file's."""
    app = api.client.app  # type: ignore[attr-defined]
    app.state.inbox = Inbox(api.instance)
    for role in sorted(STAFF):
        ok("POST", "/inbox/recipients", "coordinator",
           json={"account_id": api.accounts[role].id})  # type: ignore[attr-defined]
        ok("POST", "/inbox/key", role, json={"password": API_PASSWORD})
        unlocked = api.call("POST", f"{PREFIX}/inbox/unlock", role,
                            json={"password": API_PASSWORD})
        assert unlocked.status_code == 204, unlocked.text
    sent = TestClient(app).post("/inbox/submit", files=[
        ("message", (None, "Orders attached.")),
        ("files", ("orders.txt", b"Clear the square by 23:00.\n", "text/plain"))])
    assert sent.status_code == 200, sent.text
    [summary] = ok("GET", "/inbox/submissions", "coordinator")["items"]
    read = ok("GET", f"/inbox/submissions/{summary['id']}", "coordinator")
    return summary["id"], read["posts"][0]["files"][0]["id"]


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("authz")
    instance = new_instance(home / "instance", module_database_url, inbox_kdf_memory_mb=1,
                            inbox_kdf_passes=1)  # the inbox's Argon2id: cheap in tests
    api = make_api(instance)
    try:
        yield _build(api, home)
    finally:
        api.client.close()  # type: ignore[attr-defined]
        instance.close()


# --- the matrix --------------------------------------------------------------------------

Call = tuple[str, dict[str, Any]]  # the path below PREFIX, and what else to send


@dataclass(frozen=True)
class Probe:
    """One request and the answer each role gets: ``allowed`` roles succeed (2xx),
    ``hidden`` ones get 404, every other account 403, and no login 401.

    ``needs`` names the capabilities (any of them) that let a role past the endpoint's
    door in :mod:`sprava.accounts.roles` (empty: any account), and ``review`` that review
    rights are needed too: the cross-check compares the table with them.
    """

    what: str
    build: Callable[[World, str], Call]
    allowed: frozenset[str]
    needs: tuple[Capability, ...] = ()
    hidden: frozenset[str] = frozenset()
    review: bool = False


def fixed(path: str, **kwargs: Any) -> Callable[[World, str], Call]:
    """A request that is the same for every role; ``{name}`` in the path is filled from
    the world (``{original}``, ``{incident}`` …)."""
    def build(w: World, _role: str) -> Call:
        return path.format(**vars(w)), dict(kwargs)
    return build


def _in_scope(w: World, role: str) -> str:
    """An item the role may see: its own upload, a redacted copy, or an original."""
    return {"uploader": w.own["uploader"], "viewer": w.redacted}.get(role, w.original)


def item(suffix: str = "") -> Callable[[World, str], Call]:
    return lambda w, role: (f"/items/{_in_scope(w, role)}{suffix}", {})


def others_item(suffix: str = "") -> Callable[[World, str], Call]:
    return lambda w, _role: (f"/items/{w.own['uploader2']}{suffix}", {})


def as_new_account(path: str, body: Callable[[World, Any], Any]) -> Callable[[World, str], Call]:
    """A change to the caller's own account, made on a new account of the caller's role so
    that the harness accounts stay as they are."""
    def build(w: World, role: str) -> Call:
        if role == ANON:
            return path, {"json": body(w, None)}
        acc, token = w.account(role)
        return path, {"json": body(w, acc), "headers": {"Authorization": f"Bearer {token}"}}
    return build


def _totp_code(w: World, acc: Any) -> dict[str, str]:
    if acc is None:
        return {"code": "000000"}
    secret, _ = sessions.totp_begin(w.api.instance, sessions.Principal(acc, "token"))
    return {"code": pyotp.TOTP(secret).now()}


def own_token(w: World, role: str) -> Call:
    owner = service.get_account(w.api.instance, w.api.accounts[
        "viewer" if role == ANON else role].id)  # type: ignore[attr-defined]
    token, _ = sessions.create_token(w.api.instance, sessions.Principal(owner, "token"),
                                     {"name": "to revoke"})
    return f"/auth/tokens/{token.id}", {}


def others_token(w: World, _role: str) -> Call:
    owner = w.api.accounts["coordinator2"]
    token, _ = sessions.create_token(w.api.instance, sessions.Principal(owner, "token"),  # type: ignore[arg-type]
                                     {"name": "someone else's"})
    return f"/auth/tokens/{token.id}", {}


def new(make: Callable[[World], Any], path: str, **kwargs: Any) -> Callable[[World, str], Call]:
    """A request on a record made afresh for each call (a status change can be made once)."""
    def build(w: World, _role: str) -> Call:
        return path.format(id=make(w)), dict(kwargs)
    return build


def posting(path: str, make: Callable[[World], Any], **kwargs: Any
            ) -> Callable[[World, str], Call]:
    """A request whose JSON body is made afresh for each call (unique names)."""
    def build(w: World, _role: str) -> Call:
        return path.format(**vars(w)), {"json": make(w), **kwargs}
    return build


def _fresh_incident(w: World) -> str:
    return incidents.create_incident(w.api.instance, INCIDENT, actor=AUTHOR).id


def as_new_recipient(path: str, body: Callable[[World], Any] | None = None, *,
                     key: bool = False) -> Callable[[World, str], Call]:
    """A request on the caller's own inbox key (set, unlock, lock), made by a new
    account of the caller's role (a recipient if the role may be one) so that the
    harness accounts keep their unlocked keys."""
    def build(w: World, role: str) -> Call:
        kwargs: dict[str, Any] = {} if body is None else {"json": body(w)}
        if role == ANON:
            return path, kwargs
        _acc, token = w.recipient(role, key=key)
        return path, {**kwargs, "headers": {"Authorization": f"Bearer {token}"}}
    return build


def _fresh_recipient(w: World) -> str:
    return str(w.recipient("investigator")[0].id)


INBOX = (Capability.INBOX,)


MATRIX: dict[tuple[str, str], tuple[Probe, ...]] = {
    # service and accounts
    ("GET", "/health"): (Probe("the health check", fixed("/health"), PUBLIC),),
    ("POST", "/auth/login"): (Probe(
        "log in with the right password", lambda w, role: ("/auth/login", {"json": {
            "username": "viewer" if role == ANON else role, "password": API_PASSWORD}}),
        PUBLIC),),
    ("POST", "/auth/logout"): (Probe("log out", fixed("/auth/logout"), EVERYONE),),
    ("GET", "/auth/me"): (Probe("who am I", fixed("/auth/me"), EVERYONE),),
    ("POST", "/auth/password"): (Probe(
        "change one's own password", as_new_account("/auth/password", lambda _w, _a: {
            "current": API_PASSWORD, "new": NEW_PASSWORD}), EVERYONE),),
    ("POST", "/auth/totp"): (Probe("start a second factor", fixed("/auth/totp"), EVERYONE),),
    ("POST", "/auth/totp/enable"): (Probe(
        "enable the second factor", as_new_account("/auth/totp/enable", _totp_code),
        EVERYONE),),
    ("POST", "/auth/totp/disable"): (Probe(
        "disable the second factor", fixed("/auth/totp/disable",
                                           json={"password": API_PASSWORD}), EVERYONE),),
    ("GET", "/auth/tokens"): (Probe("list one's tokens", fixed("/auth/tokens"), EVERYONE),),
    ("POST", "/auth/tokens"): (Probe(
        "make a token", fixed("/auth/tokens", json={"name": "script"}), EVERYONE),),
    ("DELETE", "/auth/tokens/{token_id}"): (
        Probe("revoke one's own token", own_token, EVERYONE),
        Probe("revoke another account's token", others_token, COORDINATOR,
              hidden=EVERYONE - COORDINATOR)),
    ("GET", "/users"): (Probe("list accounts", fixed("/users"), COORDINATOR,
                              (Capability.ACCOUNTS,)),),
    ("POST", "/users"): (Probe("make an account", posting("/users", lambda w: {
        "username": f"new{w.next()}", "role": "viewer", "password": API_PASSWORD}),
        COORDINATOR, (Capability.ACCOUNTS,)),),
    ("GET", "/users/{account_id}"): (Probe(
        "read an account", fixed("/users/{target}"), COORDINATOR, (Capability.ACCOUNTS,)),),
    ("PATCH", "/users/{account_id}"): (Probe(
        "change an account", fixed("/users/{target}", json={"active": True}), COORDINATOR,
        (Capability.ACCOUNTS,)),),
    ("POST", "/users/{account_id}/password-reset"): (Probe(
        "reset a password", fixed("/users/{target}/password-reset"), COORDINATOR,
        (Capability.ACCOUNTS,)),),
    # items
    ("GET", "/items"): (Probe("list items", fixed("/items"), EVERYONE, ANY_ITEMS),),
    ("POST", "/items"): (Probe("upload", lambda w, _role: ("/items", {
        "params": {"name": "clip.png"}, "content": png(1000 + w.next())}), UPLOADERS,
        (Capability.UPLOAD,)),),
    ("GET", "/items/{sha256}"): (
        Probe("an item in the reader's scope", item(), EVERYONE, ANY_ITEMS),
        Probe("another uploader's original", others_item(), STAFF, ANY_ITEMS,
              hidden=frozenset({"uploader", "viewer"}))),
    ("GET", "/items/{sha256}/custody"): (
        Probe("custody of an item in scope", item("/custody"), EVERYONE, ANY_ITEMS),
        Probe("custody of another uploader's original", others_item("/custody"), STAFF,
              ANY_ITEMS, hidden=frozenset({"uploader", "viewer"}))),
    ("GET", "/items/{sha256}/content"): (
        Probe("bytes of an item in scope", item("/content"), EVERYONE, ANY_ITEMS),
        Probe("bytes of another uploader's original", others_item("/content"), STAFF,
              ANY_ITEMS, hidden=frozenset({"uploader", "viewer"}))),
    ("GET", "/items/{sha256}/similar"): (Probe(
        "near-duplicates", fixed("/items/{original}/similar"), STAFF,
        (Capability.ITEMS_ALL,)),),
    ("POST", "/items/{sha256}/redactions"): (Probe(
        "ask for a redacted copy", fixed("/items/{original}/redactions"), STAFF,
        (Capability.ITEMS_ALL,)),),
    ("GET", "/jobs"): (Probe("analysis jobs", fixed("/jobs"), STAFF,
                             (Capability.ITEMS_ALL,)),),
    ("GET", "/ledger/key"): (Probe("the ledger key", fixed("/ledger/key"), STAFF,
                                   (Capability.LEDGER,)),),
    ("GET", "/ledger/checkpoint"): (Probe(
        "the checkpoint", fixed("/ledger/checkpoint"), STAFF, (Capability.LEDGER,)),),
    ("GET", "/ledger/inclusion/{index}"): (Probe(
        "an inclusion proof", fixed("/ledger/inclusion/0"), STAFF, (Capability.LEDGER,)),),
    ("GET", "/ledger/consistency"): (Probe(
        "a consistency proof", fixed("/ledger/consistency", params={"old": 1}), STAFF,
        (Capability.LEDGER,)),),
    # search: everyone finds what their role lets them see; uploaders only their own items
    ("GET", "/search"): (Probe("search", fixed("/search?q=Pushkinskaya"), EVERYONE,
                               (*ANY_ITEMS, Capability.CATALOGUE_READ)),),
    # incidents
    ("GET", "/incidents"): (Probe("list incidents", fixed("/incidents"), READERS,
                                  (Capability.CATALOGUE_READ,)),),
    ("POST", "/incidents"): (Probe("record an incident", fixed("/incidents", json=INCIDENT),
                                   STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/incidents/{incident_id}"): (Probe(
        "read an incident", fixed("/incidents/{incident}"), READERS,
        (Capability.CATALOGUE_READ,)),),
    ("PATCH", "/incidents/{incident_id}"): (Probe(
        "edit an incident", posting("/incidents/{incident}", lambda w: {
            "description": f"edit {w.next()}"}), STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("POST", "/incidents/{incident_id}/status"): (Probe(
        "corroborate an incident", new(_fresh_incident, "/incidents/{id}/status",
                                       json={"status": "corroborated"}), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/incidents/{incident_id}/history"): (Probe(
        "an incident's history", fixed("/incidents/{incident}/history"), READERS,
        (Capability.CATALOGUE_READ,)),),
    # acts
    ("GET", "/acts"): (Probe("list acts", fixed("/acts"), READERS,
                             (Capability.CATALOGUE_READ,)),),
    ("POST", "/acts"): (Probe("record an act", posting("/acts", lambda w: {
        "incident_id": w.incident, "type": "beating"}), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/acts/{act_id}"): (Probe("read an act", fixed("/acts/{act}"), READERS,
                                      (Capability.CATALOGUE_READ,)),),
    ("PATCH", "/acts/{act_id}"): (Probe("edit an act", posting("/acts/{act}", lambda w: {
        "description": f"edit {w.next()}"}), STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/acts/{act_id}/history"): (Probe(
        "an act's history", fixed("/acts/{act}/history"), READERS,
        (Capability.CATALOGUE_READ,)),),
    # units
    ("GET", "/units"): (Probe("list units", fixed("/units"), READERS,
                              (Capability.CATALOGUE_READ,)),),
    ("POST", "/units"): (Probe("record a unit", posting("/units", lambda w: {
        "names": {"en": f"Unit {w.next()}"}, "type": "omon"}), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/units/{unit_id}"): (Probe("read a unit", fixed("/units/{unit}"), READERS,
                                        (Capability.CATALOGUE_READ,)),),
    ("PATCH", "/units/{unit_id}"): (Probe("edit a unit", posting("/units/{unit}", lambda w: {
        "notes": f"edit {w.next()}"}), STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/units/{unit_id}/history"): (Probe(
        "a unit's history", fixed("/units/{unit}/history"), READERS,
        (Capability.CATALOGUE_READ,)),),
    ("GET", "/units/{unit_id}/timeline"): (Probe(
        "a unit's timeline", fixed("/units/{unit}/timeline"), READERS,
        (Capability.CATALOGUE_READ,)),),
    # persons (restricted)
    ("GET", "/persons"): (Probe("list persons", fixed("/persons"), STAFF,
                                (Capability.PERSONS,)),),
    ("POST", "/persons"): (Probe("record a person", posting("/persons", lambda w: {
        "name": f"Officer {w.next()}"}), STAFF, (Capability.PERSONS,)),),
    ("GET", "/persons/{person_id}"): (Probe(
        "read a person", fixed("/persons/{person}"), STAFF, (Capability.PERSONS,)),),
    ("PATCH", "/persons/{person_id}"): (Probe(
        "edit a person", posting("/persons/{person}", lambda w: {
            "notes": f"edit {w.next()}"}), STAFF, (Capability.PERSONS,)),),
    ("GET", "/persons/{person_id}/history"): (Probe(
        "a person's history", fixed("/persons/{person}/history"), STAFF,
        (Capability.PERSONS,)),),
    ("GET", "/memberships"): (Probe("memberships", fixed("/memberships"), STAFF,
                                    (Capability.PERSONS,)),),
    # claims and review
    ("GET", "/claims"): (Probe("list claims", fixed("/claims"), READERS,
                               (Capability.CATALOGUE_READ,)),),
    ("POST", "/claims"): (Probe("make a claim", fixed("/claims", json={
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": "{unit}"},
        "object": {"kind": "incident", "id": "{incident}"}, "sources": ["{original}"],
        "confidence": "low"}), STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/claims/{claim_id}"): (
        Probe("a claim about a unit", fixed("/claims/{unit_claim}"), READERS,
              (Capability.CATALOGUE_READ,)),
        Probe("a claim naming a person", fixed("/claims/{person_claim}"), STAFF,
              (Capability.CATALOGUE_READ,), hidden=frozenset({"viewer"}))),
    ("PATCH", "/claims/{claim_id}"): (Probe(
        "edit a draft", new(lambda w: w.claim(submit=False), "/claims/{id}",
                            json={"comment": "edited"}), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    ("POST", "/claims/{claim_id}/submit"): (Probe(
        "submit a draft", new(lambda w: w.claim(submit=False), "/claims/{id}/submit"),
        STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("POST", "/claims/{claim_id}/withdraw"): (Probe(
        "withdraw a pending claim", new(lambda w: w.claim(), "/claims/{id}/withdraw"),
        STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("POST", "/claims/{claim_id}/approve"): (Probe(
        "approve someone else's claim", new(lambda w: w.claim(about_person=True),
                                            "/claims/{id}/approve"),
        REVIEWERS, (Capability.CATALOGUE_WRITE,), review=True),),
    ("POST", "/claims/{claim_id}/reject"): (Probe(
        "reject someone else's claim", new(lambda w: w.claim(about_person=True),
                                           "/claims/{id}/reject",
                                           json={"reason": "the badge is unreadable"}),
        REVIEWERS, (Capability.CATALOGUE_WRITE,), review=True),),
    ("GET", "/claims/{claim_id}/history"): (
        Probe("history of a claim about a unit", fixed("/claims/{unit_claim}/history"),
              READERS, (Capability.CATALOGUE_READ,)),
        Probe("history of a claim naming a person", fixed("/claims/{person_claim}/history"),
              STAFF, (Capability.CATALOGUE_READ,), hidden=frozenset({"viewer"}))),
    # cases
    ("GET", "/cases"): (Probe("list cases", fixed("/cases"), STAFF,
                              (Capability.CATALOGUE_WRITE,)),),
    ("POST", "/cases"): (Probe("start a case", fixed("/cases", json={
        "title": "Okrestina", "recipient": "Prosecutor"}), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/cases/{case_id}"): (Probe("read a case", fixed("/cases/{case}"), STAFF,
                                        (Capability.CATALOGUE_WRITE,)),),
    ("PATCH", "/cases/{case_id}"): (Probe("edit a case", posting("/cases/{case}", lambda w: {
        "description": f"edit {w.next()}"}), STAFF, (Capability.CATALOGUE_WRITE,)),),
    ("GET", "/cases/{case_id}/history"): (Probe(
        "a case's history", fixed("/cases/{case}/history"), STAFF,
        (Capability.CATALOGUE_WRITE,)),),
    # vocabulary
    ("GET", "/vocabulary"): (Probe("the vocabulary", fixed("/vocabulary"), READERS,
                                   (Capability.CATALOGUE_READ,)),),
    ("GET", "/vocabulary/{code}"): (Probe(
        "one term", fixed("/vocabulary/beating"), READERS, (Capability.CATALOGUE_READ,)),),
    ("POST", "/vocabulary"): (Probe("extend the vocabulary", posting("/vocabulary", lambda w: {
        "code": f"matrix-term-{w.next()}", "labels": {"en": "A term"}}), COORDINATOR,
        (Capability.VOCABULARY,)),),
    # the whole catalogue in and out
    ("GET", "/catalogue/export"): (Probe(
        "export the catalogue", fixed("/catalogue/export", params={"format": "csv"}),
        COORDINATOR, (Capability.EXCHANGE,)),),
    ("POST", "/catalogue/import"): (Probe(
        "import a catalogue", fixed("/catalogue/import", content=json.dumps(
            {"format": "sprava-catalogue", "version": 1}).encode()),
        COORDINATOR, (Capability.EXCHANGE,)),),
    ("POST", "/catalogue/import-sfm"): (Probe(
        "import units and commanders", lambda w, _role: ("/catalogue/import-sfm", {
            "content": f"unit:id:admin,unit:name\r\nm-{w.next()},Matrix unit\r\n".encode()}),
        COORDINATOR, (Capability.EXCHANGE,)),),
    # the insider inbox (recipients' side; the insiders' pages are outside /api/v1)
    ("GET", "/inbox/recipients"): (Probe(
        "who receives the inbox", fixed("/inbox/recipients"), STAFF, INBOX),),
    ("POST", "/inbox/recipients"): (Probe(
        "assign a recipient", posting("/inbox/recipients", lambda w: {
            "account_id": w.account("investigator")[0].id}), COORDINATOR,
        (Capability.ACCOUNTS,)),),
    ("DELETE", "/inbox/recipients/{account_id}"): (Probe(
        "remove a recipient", new(_fresh_recipient, "/inbox/recipients/{id}"), COORDINATOR,
        (Capability.ACCOUNTS,)),),
    ("POST", "/inbox/key"): (Probe(
        "set up one's inbox key", as_new_recipient("/inbox/key", lambda _w: {
            "public_key": str(age.Identity.generate().recipient)}), STAFF, INBOX),),
    ("POST", "/inbox/unlock"): (Probe(
        "unlock one's inbox key", as_new_recipient(
            "/inbox/unlock", lambda _w: {"password": API_PASSWORD}, key=True),
        STAFF, INBOX),),
    ("POST", "/inbox/lock"): (Probe(
        "lock one's inbox key", as_new_recipient("/inbox/lock", key=True), STAFF, INBOX),),
    ("GET", "/inbox/submissions"): (Probe(
        "list submissions", fixed("/inbox/submissions"), STAFF, INBOX),),
    ("GET", "/inbox/submissions/{submission_id}"): (Probe(
        "read a conversation", fixed("/inbox/submissions/{submission}"), STAFF, INBOX),),
    ("POST", "/inbox/submissions/{submission_id}/replies"): (Probe(
        "reply to an insider", fixed("/inbox/submissions/{submission}/replies",
                                     json={"text": "Thank you."}), STAFF, INBOX),),
    ("GET", "/inbox/submissions/{submission_id}/files/{file_id}"): (Probe(
        "download a submitted file", fixed("/inbox/submissions/{submission}/files/"
                                           "{inbox_file}"), STAFF, INBOX),),
    ("POST", "/inbox/submissions/{submission_id}/files/{file_id}/vault"): (Probe(
        "move a submitted file into the vault", fixed(
            "/inbox/submissions/{submission}/files/{inbox_file}/vault"), STAFF, INBOX),),
}


def _fill(value: Any, w: World) -> Any:
    """``{name}`` placeholders inside a JSON body (see ``POST /claims``), filled from the
    world."""
    if isinstance(value, str):
        return value.format(**vars(w))
    if isinstance(value, dict):
        return {k: _fill(v, w) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, w) for v in value]
    return value


def send(w: World, method: str, probe: Probe, role: str) -> Any:
    path, kwargs = probe.build(w, role)
    if "json" in kwargs:
        kwargs["json"] = _fill(kwargs["json"], w)
    own = kwargs.pop("headers", None)  # a new account's token (see as_new_account)
    headers = {} if role == ANON else own or w.api.headers(role)
    client = w.api.client
    try:
        return client.request(method, PREFIX + path, headers=headers, **kwargs)  # type: ignore[attr-defined]
    finally:
        client.cookies.clear()  # type: ignore[attr-defined]  # a login sets a cookie


def _verdict(probe: Probe, role: str, response: Any) -> str | None:
    """What is wrong with ``response`` for ``role``, or None."""
    status = response.status_code
    if role in probe.allowed:
        return None if 200 <= status < 300 else f"should succeed, got {status}"
    if role == ANON:
        expected, codes = 401, {"not-authenticated"}
    elif role in probe.hidden:
        expected, codes = 404, None
    else:
        expected, codes = 403, {"forbidden", "no-review-rights"}
    if status != expected:
        return f"should get {expected}, got {status}"
    code = response.json()["error"]["code"]
    if codes is not None and code not in codes:
        return f"refused with the wrong code {code!r}"
    return None


@pytest.mark.parametrize("endpoint", list(MATRIX), ids=lambda e: f"{e[0]} {e[1]}")
def test_each_role_gets_the_answer_the_design_gives(world: World,
                                                    endpoint: tuple[str, str]) -> None:
    method, _ = endpoint
    wrong = []
    for probe in MATRIX[endpoint]:
        for role in (*ROLES, ANON):
            response = send(world, method, probe, role)
            problem = _verdict(probe, role, response)
            if problem:
                wrong.append(f"{probe.what} as {role}: {problem}: {response.text[:300]}")
    assert not wrong, "\n".join(wrong)


def test_every_served_endpoint_has_an_entry_in_the_matrix(world: World) -> None:
    description = world.call("GET", "/openapi.json").json()
    served = {(method.upper(), path.removeprefix(PREFIX))
              for path, operations in description["paths"].items() for method in operations}
    assert served - set(MATRIX) == set(), "served, but not in the matrix: add them"
    assert set(MATRIX) - served == set(), "in the matrix, but not served"


def _may_review(harness_account: str) -> bool:
    role, reviewer = API_ROLES[harness_account]
    return Role(role) in MAY_REVIEW and (reviewer or Role(role) is Role.COORDINATOR)


def test_the_matrix_agrees_with_the_capability_table() -> None:
    """The roles the design lets through each door are those roles.py gives a key."""
    wrong = []
    for endpoint, probes in MATRIX.items():
        for probe in probes:
            admitted = {r for r in ROLES
                        if not probe.needs or capabilities(Role(API_ROLES[r][0]))
                        & set(probe.needs)}
            if probe.review:
                admitted = {r for r in admitted if _may_review(r)}
            if (probe.allowed | probe.hidden) - {ANON} != admitted:
                wrong.append(f"{endpoint} {probe.what}: table {sorted(probe.allowed)}, "
                             f"roles.py {sorted(admitted)}")
            if probe.allowed & probe.hidden:
                wrong.append(f"{endpoint} {probe.what}: both allowed and hidden")
    assert not wrong, "\n".join(wrong)


# --- scopes ------------------------------------------------------------------------------

def _listed(w: World, role: str) -> list[dict[str, Any]]:
    page = w.ok("GET", "/items", role, params={"limit": 500})
    assert page["total"] == len(page["items"])
    return list(page["items"])


def test_an_uploader_sees_only_their_own_uploads(world: World) -> None:
    assert [i["sha256"] for i in _listed(world, "uploader2")] == [world.own["uploader2"]]
    mine = {i["sha256"] for i in _listed(world, "uploader")}
    assert world.own["uploader"] in mine
    assert mine.isdisjoint({world.own["uploader2"], world.original, world.redacted})
    for sha in (world.own["uploader2"], world.original, world.redacted):
        for suffix in ("", "/custody", "/content"):
            response = world.call("GET", f"/items/{sha}{suffix}", "uploader")
            assert response.status_code == 404, (sha, suffix)
            assert response.json()["error"]["code"] == "item-not-found"
    record = world.ok("GET", f"/items/{world.own['uploader']}", "uploader")
    assert record["custody"][0]["event"]["actor"] == "user:uploader"


def test_a_viewer_sees_only_redacted_copies(world: World) -> None:
    listed = _listed(world, "viewer")
    assert [(i["sha256"], i["derived_from"]) for i in listed] == [
        (world.redacted, world.original)]
    record = world.ok("GET", f"/items/{world.redacted}", "viewer")
    assert "names" not in record
    assert set(record) <= {"sha256", "size", "media_type", "first_seen", "derived_from",
                           "custody"}
    content = world.call("GET", f"/items/{world.redacted}/content", "viewer")
    assert content.content == png(99)
    for sha in (world.original, *world.own.values()):
        assert world.call("GET", f"/items/{sha}", "viewer").status_code == 404
        assert world.call("GET", f"/items/{sha}/content", "viewer").status_code == 404


def _claims(w: World, role: str, **params: Any) -> list[dict[str, Any]]:
    return list(w.ok("GET", "/claims", role, params={"limit": 500, **params})["items"])


def _names_person(c: dict[str, Any]) -> bool:
    return "person" in (c["subject_kind"], c["object_kind"])


def test_a_viewer_sees_no_persons(world: World) -> None:
    for path in ("/persons", f"/persons/{world.person}", f"/persons/{world.person}/history",
                 "/memberships"):
        response = world.call("GET", path, "viewer")
        assert response.status_code == 403, path
    assert any(_names_person(c) for c in _claims(world, "coordinator"))
    seen = _claims(world, "viewer")
    assert seen
    assert not any(_names_person(c) for c in seen)
    assert _claims(world, "viewer", about=world.person) == []
    for suffix in ("", "/history"):
        response = world.call("GET", f"/claims/{world.person_claim}{suffix}", "viewer")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "claim-not-found"
    full = world.ok("GET", f"/units/{world.unit}/timeline", "investigator")
    assert [c["person_id"] for c in full["commanders"]["items"]] == [world.person]
    shown = world.ok("GET", f"/units/{world.unit}/timeline", "viewer",
                     params={"include_unreviewed": "true"})
    assert shown["unit"]["id"] == world.unit
    assert shown["commanders"]["items"] == []
    assert shown["commanders"]["total"] == 0
    assert world.person not in world.call("GET", f"/units/{world.unit}/timeline",
                                          "viewer").text


# --- custody of restricted reads ---------------------------------------------------------

def _views(w: World, entity: str, entity_id: str, actor: str) -> list[int]:
    """Ledger leaves of views of one record by one actor, checked against the leaf."""
    c = catalogue_change.c
    with read_transaction(w.api.instance.engine) as conn:
        leaves = list(conn.execute(select(c.leaf_index).where(
            c.entity == entity, c.entity_id == entity_id, c.change == "view",
            c.actor == actor)).scalars())
        for index in leaves:
            data = conn.execute(select(ledger_leaf.c.data)
                                .where(ledger_leaf.c.idx == index)).scalar_one()
            event = decode_leaf(bytes(data))
            assert event["actor"] == actor
            assert event["change"] == "view"
            assert entity_id in event["ids"]
    return leaves


def test_every_read_of_a_person_is_a_custody_event_naming_the_reader(world: World) -> None:
    for role in sorted(STAFF):
        actor = f"user:{role}"
        before = len(_views(world, "person", world.person, actor))
        world.ok("GET", f"/persons/{world.person}", role)
        assert len(_views(world, "person", world.person, actor)) == before + 1
        listed = world.ok("GET", "/persons", role, params={"limit": 500})["items"]
        assert world.person in [p["id"] for p in listed]
        assert len(_views(world, "person", world.person, actor)) == before + 2
    history = world.ok("GET", f"/persons/{world.person}/history", "coordinator",
                       params={"limit": 500})["items"]
    viewers = {h["actor"] for h in history if h["change"] == "view"}
    assert {f"user:{r}" for r in STAFF} <= viewers


def test_every_read_of_an_original_is_a_custody_event_naming_the_reader(world: World) -> None:
    readers = {**{r: world.original for r in STAFF}, "uploader": world.own["uploader"]}
    for role, sha in sorted(readers.items()):
        actor = f"user:{role}"
        before = len(_views(world, "item", sha, actor))
        world.ok("GET", f"/items/{sha}", role)
        assert len(_views(world, "item", sha, actor)) == before + 1
        response = world.call("GET", f"/items/{sha}/content", role)
        assert response.status_code == 200
        assert len(_views(world, "item", sha, actor)) == before + 2
    # A redacted copy is what a viewer may see; reading it is not a restricted read.
    world.ok("GET", f"/items/{world.redacted}", "viewer")
    assert _views(world, "item", world.redacted, "user:viewer") == []


# --- due process -------------------------------------------------------------------------

def _person_claim(w: World, role: str) -> str:
    created = w.ok("POST", "/claims", role, params={"submit": "true"}, json={
        "statement": "person_member_of_unit", "subject": {"kind": "person", "id": w.person},
        "object": {"kind": "unit", "id": w.unit}, "sources": [w.original],
        "confidence": "medium", "role": "deputy commander"})
    assert created["status"] == "pending_review"
    return str(created["id"])


@pytest.mark.parametrize("author", ["coordinator", "reviewer"])
def test_an_author_never_approves_their_own_claim(world: World, author: str) -> None:
    claim_id = _person_claim(world, author)
    for action, body in (("approve", None), ("reject", {"reason": "mine"})):
        response = world.call("POST", f"/claims/{claim_id}/{action}", author, json=body)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "self-review"
    assert world.ok("GET", f"/claims/{claim_id}", "coordinator2")["status"] == "pending_review"


def test_whoever_edited_a_claim_cannot_review_it(world: World) -> None:
    claim_id = world.claim(about_person=True, submit=False)
    world.ok("PATCH", f"/claims/{claim_id}", "reviewer", json={"comment": "badge 0451"})
    world.ok("POST", f"/claims/{claim_id}/submit", "coordinator2")
    response = world.call("POST", f"/claims/{claim_id}/approve", "reviewer")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "self-review"


def test_review_needs_review_rights(world: World) -> None:
    claim_id = _person_claim(world, "coordinator2")
    for action, body in (("approve", None), ("reject", {"reason": "no"})):
        response = world.call("POST", f"/claims/{claim_id}/{action}", "investigator",
                              json=body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "no-review-rights"
    assert world.ok("GET", f"/claims/{claim_id}", "coordinator")["status"] == "pending_review"


def test_a_second_reviewer_approves(world: World) -> None:
    claim_id = _person_claim(world, "investigator")
    before = world.ok("GET", "/memberships", "coordinator", params={"person_id": world.person})
    approved = world.ok("POST", f"/claims/{claim_id}/approve", "reviewer",
                        json={"reason": "the badge is legible in both videos"})
    assert (approved["status"], approved["reviewer"], approved["author"]) == (
        "approved", "user:reviewer", "user:investigator")
    after = world.ok("GET", "/memberships", "coordinator", params={"person_id": world.person})
    assert claim_id not in [m["claim_id"] for m in before["items"]]
    assert claim_id in [m["claim_id"] for m in after["items"]]
    again = world.call("POST", f"/claims/{claim_id}/approve", "coordinator")
    assert again.status_code == 409


def test_a_rejection_keeps_the_claim_and_its_reason(world: World) -> None:
    claim_id = _person_claim(world, "investigator")
    reason = "the face is not visible; the badge number is a guess"
    rejected = world.ok("POST", f"/claims/{claim_id}/reject", "coordinator",
                        json={"reason": reason})
    kept = world.ok("GET", f"/claims/{claim_id}", "investigator")
    assert rejected == kept
    assert (kept["status"], kept["review_reason"], kept["reviewer"]) == (
        "rejected", reason, "user:coordinator")
    assert claim_id in [c["id"] for c in _claims(world, "investigator", status="rejected")]
    history = world.ok("GET", f"/claims/{claim_id}/history", "investigator")["items"]
    assert (history[-1]["change"], history[-1]["note"], history[-1]["actor"]) == (
        "reject", reason, "user:coordinator")


# --- sessions, tokens, passwords ---------------------------------------------------------

def _login(client: TestClient, username: str, password: str = API_PASSWORD,
           code: str | None = None) -> Any:
    body = {"username": username, "password": password}
    if code is not None:
        body["code"] = code
    return client.post(f"{PREFIX}/auth/login", json=body)


def test_a_cookie_session_needs_the_csrf_token_to_change_anything(world: World) -> None:
    with world.client("192.0.2.10") as browser:
        session = _login(browser, "investigator")
        assert session.status_code == 200
        csrf = session.json()["csrf_token"]
        assert browser.get(f"{PREFIX}/auth/me").json()["account"]["username"] == "investigator"
        for sent in ({}, {"X-CSRF-Token": "not the token"}, {"X-CSRF-Token": ""}):
            refused = browser.post(f"{PREFIX}/incidents", json=INCIDENT, headers=sent)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "csrf-failed"
        assert browser.post(f"{PREFIX}/incidents", json=INCIDENT,
                            headers={"X-CSRF-Token": csrf}).status_code == 201
        assert browser.patch(f"{PREFIX}/units/{world.unit}", json={"notes": "csrf"}
                             ).status_code == 403
        assert browser.post(f"{PREFIX}/auth/logout", headers={"X-CSRF-Token": csrf}
                            ).status_code == 204
        assert browser.get(f"{PREFIX}/auth/me").status_code == 401
    # A bearer token is never sent by a browser on its own: no CSRF token needed.
    assert world.call("POST", "/incidents", "investigator", json=INCIDENT).status_code == 201


def test_a_revoked_token_gets_401(world: World) -> None:
    _acc, token = world.account("viewer")
    bearer = {"Authorization": f"Bearer {token}"}
    found = world.call("GET", "/auth/tokens", headers=bearer).json()["items"]
    assert world.call("GET", "/incidents", headers=bearer).status_code == 200
    assert world.call("DELETE", f"/auth/tokens/{found[0]['id']}", headers=bearer
                      ).status_code == 200
    for path in ("/auth/me", "/incidents"):
        response = world.call("GET", path, headers=bearer)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad-token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_deactivated_account_gets_401(world: World) -> None:
    acc, token = world.account("investigator")
    bearer = {"Authorization": f"Bearer {token}"}
    with world.client("192.0.2.11") as browser:
        assert _login(browser, acc.username).status_code == 200
        assert world.call("GET", "/incidents", headers=bearer).status_code == 200
        changed = world.ok("PATCH", f"/users/{acc.id}", "coordinator", json={"active": False})
        assert changed["active"] is False
        assert world.call("GET", "/incidents", headers=bearer).status_code == 401
        assert browser.get(f"{PREFIX}/incidents").status_code == 401
        refused = _login(browser, acc.username)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "login-failed"


_CHANGE_ALLOWED = {("GET", "/auth/me"), ("POST", "/auth/password"), ("POST", "/auth/logout")}


def test_a_one_time_password_must_be_changed_before_anything_else(world: World) -> None:
    made = world.ok("POST", "/users", "coordinator", json={
        "username": "fresh-coordinator", "role": "coordinator"})
    assert made["account"]["must_change_password"] is True
    once = made["one_time_password"]
    acc = service.get_account(world.api.instance, made["account"]["id"])
    _, token = sessions.create_token(world.api.instance, sessions.Principal(acc, "token"),
                                     {"name": "tests"})
    bearer = {"Authorization": f"Bearer {token}"}
    wrong = []
    for (method, path), probes in MATRIX.items():
        if probes[0].allowed == PUBLIC:
            continue
        request_path, kwargs = probes[0].build(world, "coordinator")
        kwargs.pop("headers", None)
        if "json" in kwargs:
            kwargs["json"] = _fill(kwargs["json"], world)
        response = world.api.client.request(  # type: ignore[attr-defined]
            method, PREFIX + request_path, headers=bearer, **kwargs)
        refused = (response.status_code == 403
                   and response.json()["error"]["code"] == "password-change-required")
        if refused == ((method, path) in _CHANGE_ALLOWED):
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert world.call("GET", "/auth/me", headers=bearer).json()["account"][
        "must_change_password"] is True
    assert world.call("POST", "/auth/password", headers=bearer, json={
        "current": once, "new": NEW_PASSWORD}).status_code == 204
    assert world.call("GET", "/incidents", headers=bearer).status_code == 200


def test_logins_are_paused_after_repeated_failures(world: World) -> None:
    limit = world.api.instance.settings.login_max_failures
    acc, _ = world.account("viewer")
    with world.client("198.51.100.20") as browser:
        for _ in range(limit):
            response = _login(browser, acc.username, "a wrong passphrase here")
            assert response.status_code == 401
        for password in (API_PASSWORD, "a wrong passphrase here"):
            paused = _login(browser, acc.username, password)
            assert paused.status_code == 429
            assert paused.json()["error"]["code"] == "too-many-attempts"
            assert int(paused.headers["Retry-After"]) >= 1
    # The pause holds for the account from any address.
    with world.client("198.51.100.21") as elsewhere:
        assert _login(elsewhere, acc.username).status_code == 429


def test_a_second_factor_is_needed_once_enabled_and_each_code_works_once(
        world: World) -> None:
    acc, token = world.account("investigator")
    bearer = {"Authorization": f"Bearer {token}"}
    begun = world.call("POST", "/auth/totp", headers=bearer).json()
    totp = pyotp.TOTP(begun["secret"])
    assert begun["uri"].startswith("otpauth://totp/")
    first = totp.now()
    assert world.call("POST", "/auth/totp/enable", headers=bearer,
                      json={"code": first}).status_code == 204
    assert world.call("GET", "/auth/me", headers=bearer).json()["account"]["totp_enabled"]
    with world.client("198.51.100.30") as browser:
        assert _login(browser, acc.username).status_code == 401
        assert _login(browser, acc.username, code=first).status_code == 401  # used already
        following = totp.at(time.time() + totp.interval)
        assert _login(browser, acc.username, code=following).status_code == 200
        browser.cookies.clear()
        again = _login(browser, acc.username, code=following)
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "login-failed"
