"""``sprava move``: an instance's database and blobs copied to other stores, proven the
same, and only then switched to.

The order is what makes a move safe to interrupt at any point:

1. no other process may have the instance's database open (a write it made after the
   switch would be lost to the old stores); the target database is migrated and must be
   empty (a move never merges);
2. blobs are copied while the instance could still be read (the long part; each blob
   is re-hashed by the target as it is written);
3. the source is locked against writers (SQLite ``BEGIN IMMEDIATE``; PostgreSQL
   ``LOCK TABLE … IN EXCLUSIVE MODE`` on every table, in a repeatable-read snapshot), and
   the blobs added since step 2 are copied;
4. every table is copied in one transaction on the target, and compared table by table
   (row count and multiset digest, see :mod:`sprava.move.rows`); the ledger's size,
   root and newest signed checkpoint must be byte for byte the same;
5. the inbox's ciphertext is copied to the folder the target's layout gives it;
6. the target is checked as ``sprava verify`` checks an instance (every leaf, node and
   checkpoint signature, every blob re-hashed from the target store);
7. ``sprava.toml`` is switched to the target, keeping the old file beside it.

Until step 7 the instance runs on the source as before, and the source is never
changed: a failed or interrupted move leaves at most an unused copy behind.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.engine import make_url

from sprava.audit import verify_instance
from sprava.backends.db.engine import make_engine, migrate, read_transaction, write_transaction
from sprava.backends.db.tables import item
from sprava.domain.digest import Digest
from sprava.errors import BadInputError, ConflictError, IntegrityError
from sprava.instance import Instance, blob_store
from sprava.ledger import log
from sprava.move.config import store_changes, switch_config
from sprava.move.objects import copy_blobs, copy_inbox
from sprava.move.rows import check_empty, check_foreign, copy_tables, model_tables, table_sum
from sprava.settings import Settings
from sprava.store.blobs import BlobStore, LocalBlobStore

_PAGE = 5000
IN_USE_PATIENCE = 5.0  # seconds


@dataclass
class MoveReport:
    """What a move copied and checked."""

    database_moved: bool
    blobs_moved: bool
    tables: dict[str, int] = field(default_factory=dict)
    blobs_copied: int = 0
    inbox_objects: int = 0
    ledger_size: int = 0
    ledger_root: str = ""
    items_verified: int = 0
    bytes_rehashed: int = 0
    kept_config: str = ""

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _same_database(a: str, b: str) -> bool:
    url_a, url_b = make_url(a), make_url(b)
    if url_a.get_backend_name() == url_b.get_backend_name() == "sqlite":
        return Path(url_a.database or "").resolve() == Path(url_b.database or "").resolve()
    return url_a.render_as_string(hide_password=True) == url_b.render_as_string(
        hide_password=True)


def target_settings(current: Settings, database_url: str | None, blob_url: str | None,
                    s3_endpoint_url: str | None, s3_region: str | None) -> Settings:
    """The settings the instance will have after the move."""
    if not database_url and not blob_url:
        raise BadInputError("say where to move: --to DATABASE_URL and/or --blobs BLOB_URL",
                            code="move-nowhere")
    return replace(current,
                   database_url=database_url or current.database_url,
                   blob_url=blob_url or current.blob_url,
                   s3_endpoint_url=current.s3_endpoint_url if s3_endpoint_url is None
                   else s3_endpoint_url,
                   s3_region=current.s3_region if s3_region is None else s3_region)


def _inbox_folder(settings: Settings, blobs: BlobStore) -> Path:
    # The same rule as Instance.inbox_folder, for a store not opened as an instance yet.
    if isinstance(blobs, LocalBlobStore):
        return blobs.root / "inbox"
    return settings.home / "inbox"


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one snapshot of the source while no one else may write."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(sprava_write=True) as conn, conn.begin():
            yield conn
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
            conn.begin():
        names = ", ".join(f'"{t.name}"' for t in model_tables())
        conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        yield conn


def _sqlite_users(path: Path) -> list[int]:
    """Other processes on this machine that have the SQLite file (or its WAL) open."""
    names = {str(path), f"{path}-wal"}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd) in names:
                    found.append(int(proc.name))
                    break
    return sorted(found)


def _users(engine: Engine) -> tuple[list[int], str]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        users = _sqlite_users(Path(database).resolve()) if database else []
        return users, f"process(es) {', '.join(map(str, users))}"
    with engine.connect() as conn:
        users = list(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")).scalars())
    engine.dispose()
    return users, f"{len(users)} other connection(s)"


def check_not_in_use(engine: Engine, patience: float = IN_USE_PATIENCE) -> None:
    """Refuse to move an instance that other processes are using: a write they made after
    the move would land in the old stores. (The lock of the move keeps the copy whole;
    this keeps the instance from being written to on both sides.) A process that has
    just ended may still be listed for a moment, so the check looks again for up to
    ``patience`` seconds before it refuses."""
    engine.dispose()  # our own idle connections are not users
    deadline = time.monotonic() + patience
    while True:
        users, what = _users(engine)
        if not users:
            return
        if time.monotonic() >= deadline:
            raise ConflictError(f"the instance's database is in use by {what}",
                                code="move-instance-in-use",
                                hint="stop `sprava serve`, the workers and any background "
                                     "analysis, then move again")
        time.sleep(0.25)


def _digest_pages(engine: Engine) -> Iterator[tuple[Digest, int]]:
    """Every item's blob, read a page per transaction (no snapshot held for hours)."""
    last = ""
    while True:
        with read_transaction(engine) as conn:
            rows = conn.execute(select(item.c.sha256, item.c.size).where(item.c.sha256 > last)
                                .order_by(item.c.sha256).limit(_PAGE)).all()
        if not rows:
            return
        for sha256, size in rows:
            yield Digest(sha256), int(size)
        last = rows[-1].sha256


def _locked_digests(conn: Connection) -> Iterator[tuple[Digest, int]]:
    for sha256, size in conn.execute(select(item.c.sha256, item.c.size)).all():
        yield Digest(sha256), int(size)


def _compare(source: Connection, target: Engine, copied: dict[str, int]) -> None:
    with read_transaction(target) as conn:
        for table in model_tables():
            mine, theirs = table_sum(source, table), table_sum(conn, table)
            if mine != theirs or mine.rows != copied.get(table.name):
                raise IntegrityError(
                    f"table {table.name} differs after the copy ({mine.rows} rows in the "
                    f"source, {theirs.rows} in the target)", code="move-copy-differs",
                    hint="the target database changed during the move, or lost rows; "
                         "nothing was switched: drop the target database and move again")


def _ledger(conn: Connection) -> tuple[int, bytes, str | None]:
    size = log.head_size(conn)
    root = log.root_at(conn, size) if size else b""
    latest = log.latest_checkpoint(conn)
    return size, root, latest.note if latest is not None else None


def move_instance(instance: Instance, target: Settings,
                  note: Callable[[str], None] = lambda _m: None,
                  on_bytes: Callable[[int], None] = lambda _n: None) -> MoveReport:
    """Move ``instance`` onto the stores ``target`` names; see the module docstring."""
    source = instance.settings
    move_db = not _same_database(source.database_url, target.database_url)
    move_blobs = target.blob_url != source.blob_url or (
        target.blob_url.startswith("s3:") and target.s3_endpoint_url != source.s3_endpoint_url)
    if not move_db and not move_blobs:
        raise BadInputError("the instance already uses these stores", code="move-nowhere")
    check_not_in_use(instance.engine)
    report = MoveReport(database_moved=move_db, blobs_moved=move_blobs)
    target_blobs = blob_store(target) if move_blobs else instance.blobs
    target_blobs.create()
    target_blobs.check()
    engine = instance.engine
    if move_db:
        if target.database_url.startswith("sqlite:"):
            database = make_url(target.database_url).database
            if database:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(target.database_url)
    try:
        if move_db:
            note("preparing the target database")
            with read_transaction(engine) as conn:
                check_foreign(conn)
            migrate(engine)
            with read_transaction(engine) as conn:
                check_empty(conn)
        done: set[Digest] = set()
        if move_blobs:
            note("copying blobs")
            report.blobs_copied += copy_blobs(instance.blobs, target_blobs,
                                              _digest_pages(instance.engine), done, on_bytes)
        note("locking the instance against writers")
        with _locked(instance.engine) as locked:
            if move_blobs:
                report.blobs_copied += copy_blobs(instance.blobs, target_blobs,
                                                  _locked_digests(locked), done, on_bytes)
            if move_db:
                note("copying the database")
                with write_transaction(engine) as conn:
                    report.tables = copy_tables(locked, conn)
                note("comparing every table")
                _compare(locked, engine, report.tables)
                with read_transaction(engine) as conn:
                    if _ledger(conn) != _ledger(locked):
                        raise IntegrityError("the ledger differs after the copy",
                                             code="move-ledger-differs")
            size, root, _ = _ledger(locked)
            report.ledger_size, report.ledger_root = size, root.hex()
            note("copying the inbox")
            report.inbox_objects = copy_inbox(instance.inbox_folder,
                                              _inbox_folder(target, target_blobs))
            note("verifying the moved instance")
            moved = Instance(target, engine, target_blobs, instance.signer)
            checked = verify_instance(moved)
            if not checked.ok:
                first = checked.findings[0]
                raise IntegrityError(
                    f"the moved instance does not verify: {len(checked.findings)} "
                    f"failure(s), first [{first.code}] {first.subject}: {first.message}",
                    code="move-verify-failed",
                    hint="nothing was switched; the instance still runs on its old stores")
            report.items_verified, report.bytes_rehashed = checked.items, checked.bytes_hashed
            note("switching the instance to the new stores")
            kept = switch_config(source.config_file, store_changes(
                target.database_url, target.blob_url, target.s3_endpoint_url, target.s3_region))
            report.kept_config = str(kept)
        if move_db and engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        return report
    finally:
        if engine is not instance.engine:
            engine.dispose()
