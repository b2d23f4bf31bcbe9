"""Migration 0004: item names ingested before it learn who handed them in."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, update

from sprava.backends.db.engine import migrate, schema_revision
from sprava.backends.db.tables import item_name
from sprava.instance import Instance
from sprava.store.ingest import Ingestor


def test_upgrade_fills_the_actor_of_names_held_before(instance: Instance,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"first")
    (folder / "b.txt").write_bytes(b"second")
    for actor in ("user:anna", "user:boris"):
        ingestor = Ingestor(instance, actor=actor)
        ingestor.run(ingestor.plan([os.fsencode(folder / ("a.txt" if actor == "user:anna"
                                                          else "b.txt"))]))
    with instance.engine.begin() as conn:
        conn.execute(update(item_name).values(actor=None))
    migrate(instance.engine, "0003_catalogue")
    assert schema_revision(instance.engine) == "0003_catalogue"
    migrate(instance.engine, "head")
    with instance.engine.connect() as conn:
        rows = conn.execute(select(item_name.c.name, item_name.c.actor)
                            .order_by(item_name.c.name)).all()
    assert [tuple(r) for r in rows] == [("a.txt", "user:anna"), ("b.txt", "user:boris")]
