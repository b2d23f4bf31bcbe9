"""Catalogue: incidents, acts, units, persons, claims, cases, vocabulary, change index.

Revision ID: 0003_catalogue
Revises: 0002_media

Written out in full rather than built from the current model, so that this revision keeps
building the same schema whatever later versions of the model say. Downgrading drops the
catalogue (its custody events stay in the ledger, which is never edited).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_catalogue"
down_revision = "0002_media"
branch_labels = None
depends_on = None

_ID = 36
_SALT = 32


def _fk(table: str, column: str, target: str, target_column: str = "id"
        ) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.{target_column}"],
                                   name=f"fk_{table}_{column}_{target}")


def _id(name: str = "id", nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(_ID), nullable=nullable)


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)]


def _salt() -> sa.Column[str]:
    return sa.Column("salt", sa.String(_SALT), nullable=False)


def upgrade() -> None:
    op.create_table(
        "vocabulary_term",
        sa.Column("code", sa.String(64), nullable=False),
        _salt(),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("code", name="pk_vocabulary_term"),
    )
    op.create_table(
        "incident",
        _id(), _salt(),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("place_name", sa.String(500), nullable=False),
        sa.Column("admin_area", sa.String(500), nullable=True),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("precision_m", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_incident"),
    )
    op.create_index("ix_incident_start_at", "incident", ["start_at"])
    op.create_index("ix_incident_status", "incident", ["status"])
    op.create_table(
        "incident_violation",
        _id("incident_id"),
        sa.Column("code", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "code", name="pk_incident_violation"),
        _fk("incident_violation", "incident_id", "incident"),
    )
    op.create_index("ix_incident_violation_code", "incident_violation", ["code"])
    op.create_table(
        "unit",
        _id(), _salt(),
        sa.Column("type", sa.String(200), nullable=False),
        _id("parent_id", nullable=True),
        sa.Column("area_of_operation", sa.Text, nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_unit"),
        _fk("unit", "parent_id", "unit"),
    )
    op.create_index("ix_unit_parent_id", "unit", ["parent_id"])
    op.create_table(
        "unit_name",
        _id("unit_id"),
        sa.Column("lang", sa.String(32), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", "lang", name="pk_unit_name"),
        _fk("unit_name", "unit_id", "unit"),
    )
    op.create_index("ix_unit_name_name", "unit_name", ["name"])
    op.create_table(
        "person",
        _id(), _salt(),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("rank", sa.String(200), nullable=True),
        sa.Column("role", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
    )
    op.create_table(
        "person_identifier",
        _id("person_id"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "kind", "value", name="pk_person_identifier"),
        _fk("person_identifier", "person_id", "person"),
    )
    op.create_index("ix_person_identifier_value", "person_identifier", ["value"])
    op.create_table(
        "claim",
        _id(), _salt(),
        sa.Column("statement", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        _id("subject_id"),
        sa.Column("object_kind", sa.String(16), nullable=False),
        _id("object_id"),
        sa.Column("role", sa.String(200), nullable=True),
        sa.Column("valid_from", sa.String(10), nullable=True),
        sa.Column("valid_to", sa.String(10), nullable=True),
        sa.Column("confidence", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("review_reason", sa.Text, nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_claim"),
    )
    op.create_index("ix_claim_subject_id", "claim", ["subject_id"])
    op.create_index("ix_claim_object_id", "claim", ["object_id"])
    op.create_index("ix_claim_status", "claim", ["status"])
    op.create_table(
        "claim_source",
        _id("claim_id"),
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("claim_id", "item_sha256", name="pk_claim_source"),
        _fk("claim_source", "claim_id", "claim"),
        _fk("claim_source", "item_sha256", "item", "sha256"),
    )
    op.create_index("ix_claim_source_item_sha256", "claim_source", ["item_sha256"])
    op.create_table(
        "act",
        _id(), _salt(),
        _id("incident_id"),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("victim_pseudonym", sa.String(200), nullable=True),
        sa.Column("victim_age_band", sa.String(16), nullable=True),
        sa.Column("consent_publish_anonymised", sa.Boolean, nullable=False),
        sa.Column("consent_share_with_prosecutors", sa.Boolean, nullable=False),
        sa.Column("consent_share_with_international_mechanisms", sa.Boolean, nullable=False),
        sa.Column("perpetrator_kind", sa.String(16), nullable=False),
        _id("perpetrator_unit_id", nullable=True),
        _id("perpetrator_person_id", nullable=True),
        _id("perpetrator_claim_id", nullable=True),
        sa.Column("perpetrator_description", sa.Text, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_act"),
        _fk("act", "incident_id", "incident"),
        _fk("act", "perpetrator_unit_id", "unit"),
        _fk("act", "perpetrator_person_id", "person"),
        _fk("act", "perpetrator_claim_id", "claim"),
    )
    op.create_index("ix_act_incident_id", "act", ["incident_id"])
    op.create_table(
        "act_item",
        _id("act_id"),
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("act_id", "item_sha256", name="pk_act_item"),
        _fk("act_item", "act_id", "act"),
        _fk("act_item", "item_sha256", "item", "sha256"),
    )
    op.create_index("ix_act_item_item_sha256", "act_item", ["item_sha256"])
    op.create_table(
        "case_record",
        _id(), _salt(),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_case_record"),
    )
    for name, column, target, target_column, kind in (
        ("case_incident", "incident_id", "incident", "id", sa.String(_ID)),
        ("case_claim", "claim_id", "claim", "id", sa.String(_ID)),
        ("case_item", "item_sha256", "item", "sha256", sa.String(64)),
    ):
        op.create_table(
            name,
            _id("case_id"),
            sa.Column(column, kind, nullable=False),
            sa.PrimaryKeyConstraint("case_id", column, name=f"pk_{name}"),
            _fk(name, "case_id", "case_record"),
            _fk(name, column, target, target_column),
        )
    op.create_table(
        "catalogue_change",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_sha256", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_change"),
        _fk("catalogue_change", "leaf_index", "ledger_leaf", "idx"),
    )
    op.create_index("ix_catalogue_change_entity_id", "catalogue_change", ["entity_id"])
    op.create_index("ix_catalogue_change_leaf_index", "catalogue_change", ["leaf_index"])


def downgrade() -> None:
    # Children before parents, so that foreign keys never dangle mid-way.
    for table, indexes in (
        ("catalogue_change", ("ix_catalogue_change_leaf_index", "ix_catalogue_change_entity_id")),
        ("case_item", ()), ("case_claim", ()), ("case_incident", ()), ("case_record", ()),
        ("act_item", ("ix_act_item_item_sha256",)),
        ("act", ("ix_act_incident_id",)),
        ("claim_source", ("ix_claim_source_item_sha256",)),
        ("claim", ("ix_claim_status", "ix_claim_object_id", "ix_claim_subject_id")),
        ("person_identifier", ("ix_person_identifier_value",)),
        ("person", ()),
        ("unit_name", ("ix_unit_name_name",)),
        ("unit", ("ix_unit_parent_id",)),
        ("incident_violation", ("ix_incident_violation_code",)),
        ("incident", ("ix_incident_status", "ix_incident_start_at")),
        ("vocabulary_term", ()),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
