"""The four roles and what each may do, as one table that the API and the tests share.

A role is a set of :class:`Capability`. Review rights are separate from the role: a
coordinator always has them, an investigator may be given them, nobody else may. The
authorisation matrix test walks every endpoint with every role against this table.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    COORDINATOR = "coordinator"  # runs the instance, manages accounts, reviews
    INVESTIGATOR = "investigator"  # ingests, catalogues, links, builds cases
    UPLOADER = "uploader"  # uploads; sees only their own uploads
    VIEWER = "viewer"  # reads the catalogue and redacted copies only


class Capability(StrEnum):
    UPLOAD = "upload"
    ITEMS_ALL = "items.all"  # every item, originals included (each view recorded)
    ITEMS_OWN = "items.own"  # the items this account uploaded
    ITEMS_REDACTED = "items.redacted"  # redacted copies
    CATALOGUE_READ = "catalogue.read"
    CATALOGUE_WRITE = "catalogue.write"
    PERSONS = "persons"  # restricted: read (recorded) and write
    VOCABULARY = "vocabulary"  # extend the controlled vocabulary
    ACCOUNTS = "accounts"  # create and change accounts
    EXCHANGE = "exchange"  # import and export the whole catalogue
    LEDGER = "ledger"  # checkpoints and proofs
    INBOX = "inbox"  # the insider inbox, once assigned as a recipient by a coordinator


_ALL = frozenset(Capability)

CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.COORDINATOR: _ALL - {Capability.ITEMS_OWN},
    Role.INVESTIGATOR: frozenset({
        Capability.UPLOAD, Capability.ITEMS_ALL, Capability.ITEMS_REDACTED,
        Capability.CATALOGUE_READ, Capability.CATALOGUE_WRITE, Capability.PERSONS,
        Capability.LEDGER, Capability.INBOX}),
    Role.UPLOADER: frozenset({Capability.UPLOAD, Capability.ITEMS_OWN}),
    Role.VIEWER: frozenset({Capability.ITEMS_REDACTED, Capability.CATALOGUE_READ}),
}

# Who may hold review rights at all; coordinators always hold them.
MAY_REVIEW = frozenset({Role.COORDINATOR, Role.INVESTIGATOR})


def capabilities(role: Role) -> frozenset[Capability]:
    return CAPABILITIES[role]
