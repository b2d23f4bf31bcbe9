"""Engines for SQLite and PostgreSQL, the one-writer rule, and schema migrations.

SQLite: WAL journal, ``synchronous=FULL`` (a committed custody event survives power
loss), foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE`` so
that two writers never interleave an append to the ledger. PostgreSQL: writers serialise
on the ``ledger_head`` row (``SELECT … FOR UPDATE``), see :mod:`sprava.ledger.log`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from sprava.errors import BackendUnavailableError, ConfigurationError

_WRITE = "sprava_write"
SCHEMA_HEAD = "0007_captured_at"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL takes a lock, and a process that
        # connects while another holds one (a commit, a checkpoint) must wait, not fail.
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///…`` or ``postgresql+psycopg://…``; raises ConfigurationError."""
    # SQLite: keep as many connections as the API's worker threads can use at once
    # (anyio's default limit of 40). With SQLAlchemy's default of 5 (+10 overflow), under
    # 50 concurrent requests most checkouts opened a new connection and closed it after
    # use, each paying the PRAGMAs below and an empty page cache (bench/api_load.py).
    # Connections are opened only when needed, so a CLI command still opens one.
    options: dict[str, Any] = {"pool_size": 40} if url.startswith("sqlite") else {}
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigurationError(f"cannot use database URL {url!r}: {exc}",
                                 code="bad-database-url",
                                 hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
                                 ) from None
    if backend not in ("sqlite", "postgresql"):
        # Checked before the engine is made, which would import the other database's driver.
        raise ConfigurationError(
            f"unsupported database {backend!r}", code="bad-database-url",
            hint="Sprava runs on SQLite and PostgreSQL")
    try:
        engine = create_engine(url, pool_pre_ping=url.startswith("postgresql"), **options)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"cannot use database URL {url!r}: {exc}",
            code="bad-database-url",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
            "(PostgreSQL needs the 'postgres' extra installed)",
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    elif engine.dialect.name != "postgresql":
        raise ConfigurationError(
            f"unsupported database {engine.dialect.name!r}", code="bad-database-url",
            hint="Sprava runs on SQLite and PostgreSQL",
        )
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may append to the ledger: exclusive on SQLite from its start."""
    try:
        with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise BackendUnavailableError(
            f"the database could not complete the write: {exc.orig}",
            hint="check that the database is reachable and not locked by a stuck process",
        ) from exc


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only snapshot (one transaction, so multi-query reads agree with each other)."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise BackendUnavailableError(
            f"the database could not be read: {exc.orig}",
            hint="check that the database is reachable",
        ) from exc


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    location = resources.files("sprava.backends.db") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = conn
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (upgrade or downgrade) inside one transaction."""
    from alembic import command

    with write_transaction(engine) as conn:
        config = _alembic_config(conn)
        if _is_upgrade(config, revision, _current_revision(conn)):
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def _is_upgrade(config: Any, target: str, current: str | None) -> bool:
    """Whether reaching ``target`` from ``current`` goes forward (or stays put)."""
    from alembic.script import ScriptDirectory

    if current is None or target in ("head", "heads"):
        return True
    if target == "base":
        return False
    script = ScriptDirectory.from_config(config)
    return any(rev.revision == current for rev in script.iterate_revisions(target, "base"))


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database.

    Read with a plain query: importing Alembic costs every command a fifth of a second.
    """
    with read_transaction(engine) as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest revision this version of Sprava knows (a test keeps it equal to Alembic's)."""
    return SCHEMA_HEAD


def alembic_head() -> str:
    """The newest revision among the migration scripts, as Alembic computes it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head
