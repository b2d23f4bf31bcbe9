"""Near-duplicates across the vault: the shared PDQ index and the clusters it implies.

The database (``phash`` rows) is the truth; the index file in the instance folder is a
cache of it, kept so that no process has to rebuild the index for a query. Every process
loads the file and catches up on the rows whose ids are above the largest id in it (ids
only grow), then saves it back now and then. Stale entries (hashes of an item analysed
again) are harmless: results are mapped back through the database, which drops them.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select, update

from sprava.backends.db.tables import item, item_cluster, ledger_head, phash
from sprava.errors import BadInputError, NotFoundError
from sprava.instance import Instance
from sprava.media.neardup import HashIndex

NEAR_DUPLICATE = 31  # PDQ's recommended match threshold, in bits of 256
_SAVE_AFTER = 1000  # rows caught up before the cache file is written again


@dataclass(frozen=True)
class Match:
    sha256: str
    distance: int
    second: float | None  # the matching frame of a video, if any


def _index_file(instance: Instance) -> Path:
    folder = instance.settings.home / "index"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / "pdq.index"


def open_index(instance: Instance, conn: Connection) -> HashIndex:
    """The index with every hash stored up to now, as this connection sees the database.

    A missing or damaged cache file is rebuilt from the database, never trusted.
    """
    index_file = _index_file(instance)
    try:
        index = HashIndex.load(index_file)
    except (OSError, BadInputError):
        index = HashIndex()
    seen, added = index.max_id, 0
    while True:
        rows = conn.execute(select(phash.c.id, phash.c.hash).where(phash.c.id > seen)
                            .order_by(phash.c.id).limit(50_000)).all()
        if not rows:
            break
        index.add([r.id for r in rows], [r.hash for r in rows])
        seen = rows[-1].id
        added += len(rows)
    if added >= _SAVE_AFTER:
        with index_file.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time; the write is atomic
            index.save(index_file)
    return index


def matches(instance: Instance, conn: Connection, hashes: list[str],
            max_distance: int = NEAR_DUPLICATE, limit: int = 100) -> list[Match]:
    """Items with a hash within ``max_distance`` of any of ``hashes``, closest first."""
    index = open_index(instance, conn)
    best: dict[int, int] = {}
    for hex_ in hashes:
        for phash_id, distance in index.search(hex_, max_distance=max_distance, limit=10_000):
            best[phash_id] = min(distance, best.get(phash_id, 256))
    if not best:
        return []
    found: dict[str, Match] = {}
    ids = list(best)
    for start in range(0, len(ids), 500):
        rows = conn.execute(select(phash.c.id, phash.c.item_sha256, phash.c.frame_second)
                            .where(phash.c.id.in_(ids[start:start + 500])))
        for row in rows:
            distance = best[row.id]
            current = found.get(row.item_sha256)
            if current is None or distance < current.distance:
                found[row.item_sha256] = Match(row.item_sha256, distance, row.frame_second)
    ranked = sorted(found.values(), key=lambda m: (m.distance, m.sha256))
    return ranked[:limit]


def item_hashes(conn: Connection, sha: str) -> list[str]:
    """The PDQ hashes stored for an item; refuses an item not analysed yet."""
    hashes = list(conn.execute(select(phash.c.hash).where(phash.c.item_sha256 == sha)
                               .order_by(phash.c.id)).scalars())
    if not hashes:
        raise NotFoundError(
            f"sha256:{sha} has no perceptual hash (not an image or video, not analysed yet, "
            "or its analysis failed)", code="not-hashed",
            hint="see `sprava show` for its analysis; `sprava jobs run` runs pending work")
    return hashes


def file_hashes(instance: Instance, path: Path) -> list[str]:
    """PDQ hashes of a file that is not in the vault (nothing is stored)."""
    from sprava.domain.mediatype import sniff
    from sprava.media.phash import pdq_image_variants, pdq_video
    from sprava.media.pipeline import limits_for

    with path.open("rb") as handle:
        media_type = sniff(handle.read(4096))
    if media_type.startswith("image/"):
        return [h.hex for _, h in pdq_image_variants(path, limits_for(instance))]
    if media_type.startswith("video/"):
        return [f.hex for f in pdq_video(path, limits_for(instance))]
    raise BadInputError(f"{path} is {media_type}: only images and videos have a PDQ hash",
                        code="not-hashable")


def link_clusters(instance: Instance, conn: Connection, sha: str) -> str:
    """Put ``sha`` in one cluster with every item near it, merging clusters it bridges.

    Runs in the write transaction that stored the item's hashes, after locking the ledger
    head: cluster updates are serialised, so two near-duplicates analysed at once by two
    workers still meet.
    """
    conn.execute(select(ledger_head.c.size).where(ledger_head.c.id == 1).with_for_update())
    own = list(conn.execute(select(phash.c.hash).where(phash.c.item_sha256 == sha)).scalars())
    near = [m.sha256 for m in matches(instance, conn, own, limit=100_000)] if own else []
    members = set(near) | {sha}
    clusters = set(conn.execute(select(item_cluster.c.cluster)
                                .where(item_cluster.c.item_sha256.in_(sorted(members))))
                   .scalars())
    # A cluster is named by its earliest member (first seen, then digest).
    candidates = sorted(members | clusters)
    first = conn.execute(select(item.c.sha256).where(item.c.sha256.in_(candidates))
                         .order_by(item.c.first_seen, item.c.sha256).limit(1)).scalar_one()
    first = str(first)
    if clusters:
        conn.execute(update(item_cluster).where(item_cluster.c.cluster.in_(sorted(clusters)))
                     .values(cluster=first))
    known = set(conn.execute(select(item_cluster.c.item_sha256)
                             .where(item_cluster.c.item_sha256.in_(sorted(members)))).scalars())
    for member in sorted(members - known):
        conn.execute(item_cluster.insert().values(item_sha256=member, cluster=first))
    conn.execute(update(item_cluster).where(item_cluster.c.item_sha256.in_(sorted(members)))
                 .values(cluster=first))
    return first


def cluster_of(conn: Connection, sha: str) -> tuple[str | None, list[str]]:
    """The item's cluster name and its members (itself included)."""
    name = conn.execute(select(item_cluster.c.cluster)
                        .where(item_cluster.c.item_sha256 == sha)).scalar_one_or_none()
    if name is None:
        return None, []
    members = conn.execute(select(item_cluster.c.item_sha256)
                           .where(item_cluster.c.cluster == name)
                           .order_by(item_cluster.c.item_sha256)).scalars().all()
    return name, list(members)
