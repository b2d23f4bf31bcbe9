"""When each item was taken: ``item.captured_at``, indexed, for the evidence grid's filter.

Revision ID: 0007_captured_at
Revises: 0006_inbox

The capture time is what the metadata analysis found (``fields.captured_at`` of the
item's ``metadata`` step: EXIF DateTimeOriginal, a video container's creation time),
stored as UTC; a time written without its offset is read as UTC, as the pipeline does
from this revision on (:func:`sprava.media.pipeline.capture_moment`). The column is
filled for the items analysed before it, a batch at a time. Downgrading drops the
column; the metadata it came from stays in ``analysis``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007_captured_at"
down_revision = "0006_inbox"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite adds and drops a plain column in
    # place): a batch copy of ``item`` would have to drop the table every other one
    # refers to.
    op.add_column("item", sa.Column("captured_at", sa.DateTime(timezone=True),
                                    nullable=True))
    op.create_index("ix_item_captured_at", "item", ["captured_at"])
    _fill()


def _moment(result: str | None) -> datetime | None:
    """The capture time in a stored metadata result, as an aware UTC time, or None."""
    try:
        fields = json.loads(result or "null")["fields"]
        found = datetime.fromisoformat(fields["captured_at"])
    except (ValueError, TypeError, KeyError):
        return None  # no time, or a result this revision cannot read: left empty
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)


def _fill() -> None:
    conn = op.get_bind()
    items = sa.table("item", sa.column("sha256", sa.String),
                     sa.column("captured_at", sa.DateTime(timezone=True)))
    steps = sa.table("analysis", sa.column("item_sha256", sa.String),
                     sa.column("step", sa.String), sa.column("status", sa.String),
                     sa.column("result", sa.Text))
    after = ""
    while True:
        rows = conn.execute(
            sa.select(steps.c.item_sha256, steps.c.result)
            .where(steps.c.step == "metadata", steps.c.status == "done",
                   steps.c.item_sha256 > after)
            .order_by(steps.c.item_sha256).limit(_BATCH)).all()
        if not rows:
            return
        for sha, result in rows:
            moment = _moment(result)
            if moment is not None:
                conn.execute(sa.update(items).where(items.c.sha256 == sha)
                             .values(captured_at=moment))
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_item_captured_at", table_name="item")
    op.drop_column("item", "captured_at")
