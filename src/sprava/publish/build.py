"""``sprava publish``: build the public transparency site and record its publication.

In order:

1. Check the target folder: missing, empty, or a site Sprava published before
   (:mod:`sprava.publish.output`); anything else is refused before any work.
2. In one read transaction, read what may be public through the allow-list
   (:mod:`sprava.publish.public`) as of ledger size ``head``, and refuse if a published
   text holds a restricted name (:mod:`sprava.publish.guard`).
3. Render every page, chart and ``data/public.json`` into a staging folder beside the
   target.
4. Record the publication, in a write transaction that first checks no catalogue record
   changed since ``head``: a ``view`` event naming the persons whose names go public
   (the commanders; persons are restricted, and this is where they leave), and an event
   of kind ``publish`` committing to ``data/public.json`` by its SHA-256. Like every
   write it ends with a signed checkpoint.
5. Write that checkpoint, the verifier key, consistency proofs from the checkpoints of
   earlier publications and the methodology pages; then swap the staging folder in.

If anything fails before step 4, nothing is recorded and the target is untouched. If
step 5 fails (a full disk), the ledger says the site was published and the target still
holds the previous site; publishing again is recorded again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue._record import Recorder, check_actor, chunks
from sprava.domain.catalogue import EntityKind
from sprava.domain.custody import CustodyEvent, rfc3339
from sprava.errors import ConflictError, IntegrityError
from sprava.instance import Instance
from sprava.ledger import log
from sprava.ledger.log import LedgerAppender
from sprava.publish.document import public_document
from sprava.publish.guard import check_restricted_names
from sprava.publish.output import Staging, check_target, staging
from sprava.publish.public import Snapshot, public_sources, read_snapshot
from sprava.publish.site import LedgerView, Site

PUBLISH = "publish"  # the custody event kind of a publication


def publish_event(*, data_sha256: str, size: int, counts: dict[str, int],
                  persons: list[str], actor: str, time: datetime) -> CustodyEvent:
    """The custody event of a publication: the digest of the site's data (never its
    content), what it counts, and the ids of the persons it names."""
    return CustodyEvent(PUBLISH, time, actor, {
        "data_sha256": data_sha256, "data_size": size, "counts": dict(counts),
        "persons": sorted(persons)})


@dataclass(frozen=True)
class Published:
    path: Path
    leaf: int
    tree_size: int
    root: str
    data_sha256: str
    incidents: int
    verified: int
    units: int
    commanders: int
    languages: tuple[str, ...]
    files: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "leaf": self.leaf, "tree_size": self.tree_size,
                "root": self.root, "data_sha256": self.data_sha256,
                "incidents": self.incidents, "verified": self.verified, "units": self.units,
                "commanders": self.commanders, "languages": list(self.languages),
                "files": self.files}


def _counts(snap: Snapshot) -> dict[str, int]:
    return {"incidents": snap.figures.total, "verified": len(snap.incidents),
            "units": len(snap.units),
            "commanders": sum(len(u.commanders) for u in snap.units)}


def _changed_since(conn: Connection, head: int) -> bool:
    """Whether a catalogue record changed at or after ledger size ``head`` (views and
    exports read records, they change none)."""
    c = catalogue_change.c
    return conn.execute(select(c.id).where(c.leaf_index >= head,
                                           c.change.notin_(("view", "export")))
                        .limit(1)).first() is not None


def _earlier(conn: Connection, before: int) -> list[int]:
    """Tree sizes of the checkpoints of earlier publications."""
    rows = conn.execute(select(ledger_leaf.c.idx).where(ledger_leaf.c.kind == PUBLISH,
                                                        ledger_leaf.c.idx < before))
    return sorted(int(i) + 1 for i in rows.scalars())


def _ledger(instance: Instance, stage: Staging, leaf: int, data_sha256: str
            ) -> tuple[LedgerView, bytes]:
    size = leaf + 1
    earlier = []
    with read_transaction(instance.engine) as conn:
        stored = log.checkpoint_at(conn, size)
        if stored is None:  # the publication's own transaction signed it
            raise IntegrityError(f"the checkpoint at size {size} is missing",
                                 code="checkpoint-missing", hint="run `sprava verify`")
        root = log.root_at(conn, size)
        for old in _earlier(conn, leaf):
            signed = log.checkpoint_at(conn, old)
            if signed is None:
                continue
            proof = {"old_size": old, "new_size": size,
                     "old_root": log.root_at(conn, old).hex(), "new_root": root.hex(),
                     "proof": [h.hex() for h in log.consistency_proof(conn, old, size)]}
            names = {"checkpoint": f"checkpoint-{old}.txt",
                     "proof": f"consistency-{old}-{size}.json"}
            stage.write(f"ledger/{names['checkpoint']}", signed.note.encode())
            stage.write(f"ledger/{names['proof']}",
                        (json.dumps(proof, indent=1) + "\n").encode())
            earlier.append(names)
    stage.write("ledger/checkpoint.txt", stored.note.encode())
    stage.write("ledger/verifier-key.txt", f"{instance.verifier}\n".encode())
    view = LedgerView(leaf=leaf, size=size, checkpoint=stored.note,
                      verifier=str(instance.verifier), data_sha256=data_sha256,
                      earlier=earlier)
    return view, root


def publish_site(instance: Instance, out: Path, *, actor: str | None = None) -> Published:
    """Build the public site into ``out`` and record the publication.

    Raises ConflictError ``output-not-a-site`` / ``output-not-a-folder`` (``out`` may not
    be replaced), ``restricted-name-in-text`` (a published text names a victim or a
    person the site may not name), ``catalogue-changed`` (a record changed while the site
    was being built: run it again); ConfigurationError ``output-unwritable``.
    """
    settings = instance.settings
    actor = check_actor(actor or settings.actor)
    target = check_target(out)
    now = datetime.now(UTC)
    with read_transaction(instance.engine) as conn:
        snap = read_snapshot(conn, precision_km=settings.publish_precision_km,
                             public=public_sources(settings.publish_public_sources))
        check_restricted_names(conn, snap, snap.persons)
    data = public_document(snap, origin=instance.origin, published_at=rfc3339(now))
    data_sha256 = hashlib.sha256(data).hexdigest()
    site = Site(snap, published_at=now)
    counts = _counts(snap)
    with staging(target) as stage:
        site.render(stage)
        stage.write("data/public.json", data)
        with write_transaction(instance.engine) as conn:
            appender = LedgerAppender(conn, instance.signer)  # locks the ledger first
            rec = Recorder(conn, appender, actor)
            if _changed_since(conn, snap.head):
                raise ConflictError("the catalogue changed while the site was being built",
                                    code="catalogue-changed", hint="run `sprava publish` again")
            for part in chunks(list(snap.persons)):
                rec.record_view(EntityKind.PERSON, part)
            leaf = appender.append(publish_event(
                data_sha256=data_sha256, size=len(data), counts=counts,
                persons=list(snap.persons), actor=actor, time=rec.now))
            rec.finish()
        view, root = _ledger(instance, stage, leaf, data_sha256)
        site.render_methodology(stage, view)
        stage.write_marker({"origin": instance.origin, "published_at": rfc3339(now),
                            "ledger_size": view.size, "publish_leaf": leaf})
        files = len(stage.files)
    return Published(target, leaf, view.size, root.hex(), data_sha256, counts["incidents"],
                     counts["verified"], counts["units"], counts["commanders"],
                     site.languages, files)
