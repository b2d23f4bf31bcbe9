"""Export a case as a case file: a BagIt bag that proves its own contents and its export.

In order:

1. Read what the case reaches (:mod:`~sprava.casefile.selection`), as of ledger size
   ``head``, in one read transaction.
2. Stream every item from the vault into ``data/``, re-hashing it on the way: content
   that no longer matches its name stops the export before anything is recorded.
3. Write the catalogue slice, the report, the verifier and ``sprava/contents.json``, which
   lists every item, every event and the SHA-256 of every other file.
4. Record the export: one custody event naming the recipient and the persons leaving,
   committing to the case's state and to ``contents.json`` by its SHA-256, appended in a
   write transaction that first checks nothing in the case changed since ``head`` and
   that ends, like every write, with a signed checkpoint.
5. Write every event with its inclusion proof against *that* checkpoint (so the bag
   proves its own export), the checkpoint, the key, and consistency proofs from the
   checkpoints of earlier exports; then the BagIt manifests; then rename the bag into place.

If anything fails before step 4, nothing is recorded and no case file appears. If step 5
fails (a full disk), the ledger says the case was exported and no file was delivered;
the export can be run again and is recorded again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

import sprava
from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.casefile.bag import BagWriter
from sprava.casefile.report import make_thumbnails, render_html, render_pdf
from sprava.casefile.selection import Selection, changed_since, select_case
from sprava.catalogue import schema
from sprava.catalogue._record import chunks, recording
from sprava.domain.custody import rfc3339
from sprava.domain.digest import Digest
from sprava.errors import ConflictError, IntegrityError, NotFoundError
from sprava.instance import Instance
from sprava.ledger import log

FORMAT = "sprava-casefile/1"
CATALOGUE_FORMAT = "sprava-catalogue-slice/1"
_EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/tiff": "tif",
    "image/bmp": "bmp", "image/webp": "webp", "image/heic": "heic", "image/heif": "heif",
    "image/avif": "avif", "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
    "video/x-matroska": "mkv", "video/x-msvideo": "avi", "video/3gpp": "3gp",
    "video/3gpp2": "3g2", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/ogg": "ogg",
    "audio/flac": "flac", "audio/wav": "wav", "application/pdf": "pdf",
    "application/zip": "zip", "application/gzip": "gz", "application/x-7z-compressed": "7z",
    "text/plain": "txt",
}
_README = """\
This is a Sprava case file: a BagIt bag (RFC 8493) whose contents are signed.

To check it, with Python 3.11 or later and the `cryptography` package (no network needed):

    python3 tools/sprava_verify.py CASEFILE --key "KEY YOU WERE GIVEN"

CASEFILE is this folder, or the zip file it came in. Without --key the check shows
that the bag agrees with itself and with the key in sprava/verifier-key.txt; with the
key you got from the team by another channel it also shows who signed it. With
--since CHECKPOINT it shows that the log extends a checkpoint you already hold.

What is where:
  data/                       the evidence, each file named by its SHA-256
  sprava/checkpoint.txt       the signed checkpoint of the custody log (C2SP signed note)
  sprava/verifier-key.txt     the log's public key (Go note verifier key, Ed25519)
  sprava/events.jsonl         custody events, exact bytes, each with its inclusion proof
  sprava/contents.json        what the bag holds; the export event commits to its SHA-256
  sprava/catalogue.json       incidents, acts, claims, units, persons of the case
  sprava/consistency.jsonl    proofs that this log extends the checkpoints of earlier exports
  report/                     the report for people (HTML, PDF) with redacted thumbnails
  tools/sprava_verify.py      the verifier (standard library and `cryptography` only)

Every check can be repeated by hand with standard tools; Sprava's docs/casefiles.md
says how, and what every finding code means.
"""


def extension(media_type: str) -> str:
    return _EXTENSIONS.get(media_type, "bin")


@dataclass(frozen=True)
class Exported:
    path: Path
    case: str
    recipient: str
    export_leaf: int
    tree_size: int
    root: str
    items: int
    payload_bytes: int
    events: int
    persons: int
    pdf: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "case": self.case, "recipient": self.recipient,
                "export_leaf": self.export_leaf, "tree_size": self.tree_size,
                "root": self.root, "items": self.items, "payload_bytes": self.payload_bytes,
                "events": self.events, "persons": self.persons, "pdf": self.pdf}


def default_name(case_id: str, when: datetime, zipped: bool) -> str:
    return f"case-{case_id[:8]}-{when:%Y%m%d-%H%M%S}" + (".zip" if zipped else "")


def _record(entity: Any, selection: Selection, **extra: Any) -> dict[str, Any]:
    trail = [t.to_dict() for t in selection.trails.get(entity.id, [])]
    return {"state": entity.state(), **extra, "custody": trail}


def catalogue_json(selection: Selection) -> bytes:
    """The catalogue slice: each record's exact committed state (its custody events carry
    that state's SHA-256), what it counts as, and its custody record."""
    s = selection
    slice_ = {
        "format": CATALOGUE_FORMAT,
        "case": _record(s.case, s),
        "incidents": [_record(i, s) for i in s.incidents],
        "acts": [_record(a, s, perpetrator_effect=str(a.perpetrator.effect)) for a in s.acts],
        "claims": [_record(c, s, effect=str(c.effect)) for c in s.claims],
        "units": [_record(u, s) for u in s.units],
        "persons": [_record(p, s) for p in s.persons],
        "violation_types": s.labels,
    }
    return (json.dumps(slice_, ensure_ascii=False, indent=1) + "\n").encode()


def _leaves(conn: Connection, indices: Iterable[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for part in chunks(sorted(indices)):
        for idx, data in conn.execute(select(ledger_leaf.c.idx, ledger_leaf.c.data)
                                      .where(ledger_leaf.c.idx.in_(part))):
            found[int(idx)] = bytes(data)
    return found


def _earlier_export_sizes(conn: Connection, before: int) -> set[int]:
    c = catalogue_change.c
    return {int(i) + 1 for i in conn.execute(select(c.leaf_index).where(
        c.change == "export", c.entity == "case", c.leaf_index < before)).scalars()}


def export_case(instance: Instance, case_id: str, *, recipient: str, out: Path | None = None,
                zipped: bool = True, actor: str | None = None,
                prove_from: Iterable[int] = (),
                progress: Callable[[int], None] | None = None) -> Exported:
    """Write the case file of ``case_id`` for ``recipient`` and record its export.

    Raises NotFoundError (no such case, an item missing from the vault), ConflictError
    (``recipient-mismatch``: the case was prepared for someone else; ``case-changed``: a
    record of the case changed during the export; ``output-exists``), IntegrityError
    (``blob-altered``: vault content no longer matches its digest).
    """
    case_id = schema.entity_id(case_id, "case_id")
    actor = actor or instance.settings.actor
    now = datetime.now(UTC)
    with read_transaction(instance.engine) as conn:
        sel = select_case(conn, case_id)
        earlier = _earlier_export_sizes(conn, sel.head)
    prove = sorted(m for m in earlier | set(prove_from) if 1 <= m <= sel.head)
    if recipient.strip() != sel.case.recipient:
        raise ConflictError(
            f"case {case_id} was prepared for {sel.case.recipient!r}, not {recipient!r}",
            code="recipient-mismatch",
            hint="a case leaves only for the recipient it names; change the case's recipient "
            "first if it is to go to someone else")
    out = out if out is not None else Path.cwd() / default_name(case_id, now, zipped)
    with BagWriter(out, zipped=zipped, when=now) as bag:
        listed = _payload(instance, sel, bag, progress)
        files = _documents(instance, sel, bag, now, actor)
        files["bag-info.txt"] = bag.add_bag_info({
            "Source-Organization": instance.origin,
            "Bagging-Date": f"{now:%Y-%m-%d}",
            "Bag-Software-Agent": f"Sprava {sprava.__version__}",
            "External-Identifier": f"case {case_id}",
            "External-Description": sel.case.title,
            "Sprava-Recipient": sel.case.recipient,
        })
        contents = {
            "format": FORMAT, "case": case_id, "recipient": sel.case.recipient,
            "origin": instance.origin, "exported_at": rfc3339(now), "exported_by": actor,
            "items": listed, "events": sel.events, "consistency_from": prove, "files": files,
        }
        contents_sha = bag.add("sprava/contents.json",
                               (json.dumps(contents, indent=1) + "\n").encode())
        with recording(instance, actor) as rec:
            changed = changed_since(rec.conn, sel.record_ids, sel.head)
            if changed is not None:
                raise ConflictError(
                    f"{changed} changed while the case file was being written",
                    code="case-changed", hint="run the export again")
            export_leaf = rec.record_export(
                case_id, sel.case.state(), recipient=sel.case.recipient,
                persons=[p.id for p in sel.persons], contents_sha256=contents_sha)
        size = export_leaf + 1
        root, events = _proofs(instance, sel, bag, export_leaf, size, prove)
        path = bag.finish()
    return Exported(path, case_id, sel.case.recipient, export_leaf, size, root.hex(),
                    len(listed), sum(i["size"] for i in listed), events, len(sel.persons),
                    "report/report.pdf" in files)


def _payload(instance: Instance, sel: Selection, bag: BagWriter,
             progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    listed = []
    for info in sel.items:
        path = f"data/{info.sha256}.{extension(info.media_type)}"
        try:
            src = instance.blobs.open(Digest(info.sha256))
        except NotFoundError:
            raise NotFoundError(f"the content of sha256:{info.sha256} is missing from the "
                                "vault", code="blob-missing",
                                hint="run `sprava verify` to see what else is missing") from None
        with src:
            sha, size = bag.copy(path, src, progress)
        if (sha, size) != (info.sha256, info.size):
            raise IntegrityError(
                f"the stored content of sha256:{info.sha256} no longer hashes to it",
                code="blob-altered", hint="run `sprava verify`; nothing was exported")
        listed.append({"sha256": info.sha256, "size": info.size,
                       "media_type": info.media_type, "path": path,
                       "derived_from": info.derived_from, "derivation": info.derivation})
    return listed


def _documents(instance: Instance, sel: Selection, bag: BagWriter, now: datetime,
               actor: str) -> dict[str, str]:
    """The files for people and for checkers; returns their SHA-256 by path."""
    files: dict[str, str] = {}
    thumbs = make_thumbnails(instance.blobs, sel.items)
    pictures = {f"thumbs/{sha}.jpg": data for sha, data in thumbs.items()}
    page = render_html(sel, {sha: f"thumbs/{sha}.jpg" for sha in thumbs},
                       exported_at=rfc3339(now), actor=actor, origin=instance.origin)
    files["report/report.html"] = bag.add("report/report.html", page.encode())
    for name, data in sorted(pictures.items()):
        files[f"report/{name}"] = bag.add(f"report/{name}", data)
    pdf = render_pdf(page, pictures)
    if pdf is not None:
        files["report/report.pdf"] = bag.add("report/report.pdf", pdf)
    files["sprava/catalogue.json"] = bag.add("sprava/catalogue.json", catalogue_json(sel))
    verifier = (resources.files("sprava.casefile") / "sprava_verify.py").read_bytes()
    files["tools/sprava_verify.py"] = bag.add("tools/sprava_verify.py", verifier)
    files["tools/README.txt"] = bag.add("tools/README.txt", _README.encode())
    return files


def _proofs(instance: Instance, sel: Selection, bag: BagWriter, export_leaf: int, size: int,
            prove: list[int]) -> tuple[bytes, int]:
    """Events with inclusion proofs, the checkpoint, the key and consistency proofs."""
    indices = [*sel.events, export_leaf]
    with read_transaction(instance.engine) as conn:
        stored = log.checkpoint_at(conn, size)
        if stored is None:  # the export's own transaction signed it; its absence is damage
            raise IntegrityError(f"the checkpoint at size {size} is missing",
                                 code="checkpoint-missing", hint="run `sprava verify`")
        root = log.root_at(conn, size)
        with bag.file("sprava/events.jsonl") as sink:
            for start in range(0, len(indices), 500):
                part = indices[start : start + 500]
                leaves = _leaves(conn, part)
                for index in part:
                    proof = log.inclusion_proof(conn, index, size)
                    line = {"index": index, "leaf": leaves[index].decode("utf-8"),
                            "proof": [h.hex() for h in proof]}
                    sink.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
        with bag.file("sprava/consistency.jsonl") as sink:
            for old in prove:
                earlier = log.checkpoint_at(conn, old)
                line = {"old_size": old, "old_root": log.root_at(conn, old).hex(),
                        "proof": [h.hex() for h in log.consistency_proof(conn, old, size)],
                        "checkpoint": earlier.note if earlier else None}
                sink.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
    bag.add("sprava/checkpoint.txt", stored.note.encode())
    bag.add("sprava/verifier-key.txt", f"{instance.verifier}\n".encode())
    return root, len(indices)
