"""The catalogue tables (migration 0003), on the same ``metadata`` as the vault's.

Import this module wherever the whole schema is needed (Alembic's compare, tests): the
tables register themselves on :data:`sprava.backends.db.tables.metadata` when imported.

By design there is no column for an address, a phone number, a relative or a private
account of anyone (shared/DESIGN.md, "Red lines"); a unit test keeps it so.

Ids are UUIDs as text, so that catalogues can be exported and merged between instances.
Every entity row has a ``salt``: the random part of the state whose SHA-256 its custody
events carry (see :mod:`sprava.domain.catalogue`). ``catalogue_change`` indexes those
events by entity; each row names its ledger leaf.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from sprava.backends.db.tables import UTCDateTime, metadata

ID = 36  # a UUID as text
SALT = 32


def _stamps() -> list[Column[Any]]:
    return [Column("created_at", UTCDateTime(), nullable=False),
            Column("updated_at", UTCDateTime(), nullable=False)]


# Terms an instance added to the violation-type vocabulary; the shipped terms are data in
# the package (sprava/catalogue/data/violations.json), not rows.
vocabulary_term = Table(
    "vocabulary_term",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("labels", Text, nullable=False),  # JSON: language tag → label
    Column("description", Text, nullable=False),
    *_stamps(),
)

incident = Table(
    "incident",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("start_at", UTCDateTime(), nullable=False),
    Column("end_at", UTCDateTime(), nullable=True),
    Column("place_name", String(500), nullable=False),
    Column("admin_area", String(500), nullable=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("precision_m", Float, nullable=True),
    Column("status", String(16), nullable=False),
    *_stamps(),
    Index("ix_incident_start_at", "start_at"),
    Index("ix_incident_status", "status"),
)

incident_violation = Table(
    "incident_violation",
    metadata,
    Column("incident_id", String(ID), ForeignKey("incident.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Index("ix_incident_violation_code", "code"),
)

unit = Table(
    "unit",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("type", String(200), nullable=False),
    Column("parent_id", String(ID), ForeignKey("unit.id"), nullable=True),
    Column("area_of_operation", Text, nullable=True),
    Column("notes", Text, nullable=True),
    *_stamps(),
    Index("ix_unit_parent_id", "parent_id"),
)

unit_name = Table(
    "unit_name",
    metadata,
    Column("unit_id", String(ID), ForeignKey("unit.id"), primary_key=True),
    Column("lang", String(32), primary_key=True),
    Column("name", String(500), nullable=False),
    Index("ix_unit_name_name", "name"),
)

# Restricted: read only through sprava.catalogue.persons, which records every view.
person = Table(
    "person",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("name", String(500), nullable=False),
    Column("rank", String(200), nullable=True),
    Column("role", String(200), nullable=True),
    Column("notes", Text, nullable=True),
    *_stamps(),
)

person_identifier = Table(
    "person_identifier",
    metadata,
    Column("person_id", String(ID), ForeignKey("person.id"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("value", String(100), primary_key=True),
    Index("ix_person_identifier_value", "value"),
)

claim = Table(
    "claim",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("statement", String(64), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(ID), nullable=False),
    Column("object_kind", String(16), nullable=False),
    Column("object_id", String(ID), nullable=False),
    Column("role", String(200), nullable=True),
    Column("valid_from", String(10), nullable=True),  # ISO date, possibly partial
    Column("valid_to", String(10), nullable=True),
    Column("confidence", String(8), nullable=False),
    Column("comment", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("author", String(200), nullable=False),
    Column("reviewer", String(200), nullable=True),
    Column("review_reason", Text, nullable=True),
    Column("reviewed_at", UTCDateTime(), nullable=True),
    *_stamps(),
    Index("ix_claim_subject_id", "subject_id"),
    Index("ix_claim_object_id", "object_id"),
    Index("ix_claim_status", "status"),
)

claim_source = Table(
    "claim_source",
    metadata,
    Column("claim_id", String(ID), ForeignKey("claim.id"), primary_key=True),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Index("ix_claim_source_item_sha256", "item_sha256"),
)

act = Table(
    "act",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("incident_id", String(ID), ForeignKey("incident.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("victim_pseudonym", String(200), nullable=True),
    Column("victim_age_band", String(16), nullable=True),
    Column("consent_publish_anonymised", Boolean, nullable=False),
    Column("consent_share_with_prosecutors", Boolean, nullable=False),
    Column("consent_share_with_international_mechanisms", Boolean, nullable=False),
    Column("perpetrator_kind", String(16), nullable=False),
    Column("perpetrator_unit_id", String(ID), ForeignKey("unit.id"), nullable=True),
    Column("perpetrator_person_id", String(ID), ForeignKey("person.id"), nullable=True),
    Column("perpetrator_claim_id", String(ID), ForeignKey("claim.id"), nullable=True),
    Column("perpetrator_description", Text, nullable=True),
    *_stamps(),
    Index("ix_act_incident_id", "incident_id"),
)

act_item = Table(
    "act_item",
    metadata,
    Column("act_id", String(ID), ForeignKey("act.id"), primary_key=True),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Index("ix_act_item_item_sha256", "item_sha256"),
)

case_record = Table(
    "case_record",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("salt", String(SALT), nullable=False),
    Column("title", String(500), nullable=False),
    Column("recipient", String(500), nullable=False),
    Column("description", Text, nullable=True),
    *_stamps(),
)

case_incident = Table(
    "case_incident",
    metadata,
    Column("case_id", String(ID), ForeignKey("case_record.id"), primary_key=True),
    Column("incident_id", String(ID), ForeignKey("incident.id"), primary_key=True),
)

case_claim = Table(
    "case_claim",
    metadata,
    Column("case_id", String(ID), ForeignKey("case_record.id"), primary_key=True),
    Column("claim_id", String(ID), ForeignKey("claim.id"), primary_key=True),
)

case_item = Table(
    "case_item",
    metadata,
    Column("case_id", String(ID), ForeignKey("case_record.id"), primary_key=True),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
)

# One row per catalogue custody event and entity it names (a view of several persons is
# one event, several rows). Written after the leaves, in the same transaction.
catalogue_change = Table(
    "catalogue_change",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("leaf_index", BigInteger, ForeignKey("ledger_leaf.idx"), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("change", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("state_sha256", String(64), nullable=True),  # None for views
    Column("note", Text, nullable=True),
    Index("ix_catalogue_change_entity_id", "entity_id"),
    Index("ix_catalogue_change_leaf_index", "leaf_index"),
)

CATALOGUE_TABLES = (
    vocabulary_term, incident, incident_violation, unit, unit_name, person, person_identifier,
    claim, claim_source, act, act_item, case_record, case_incident, case_claim, case_item,
    catalogue_change,
)
