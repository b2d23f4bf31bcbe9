"""Copying every table of one database into another, and proving the copy is the same.

The copy reads through the table model (:data:`sprava.backends.db.tables.metadata`), so
values cross between SQLite and PostgreSQL as Python values (times stay time-zone aware,
bytes stay bytes) and every column the migrations added is included. The full-text part
of the search index is not in the model: the target's own triggers (SQLite) or
generated columns (PostgreSQL) rebuild it from the copied ``search_doc`` rows.

Sameness is checked table by table with a count and a *multiset digest*: the sum,
modulo 2²⁵⁶, of the SHA-256 of each row's canonical form. It does not depend on the
order rows come back in, which differs between the two databases for text keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Integer, Table, func, select

from sprava.backends.db.tables import ledger_head, metadata
from sprava.errors import ConflictError

_BATCH = 2000
# Rows the migrations themselves write into a new database: the ledger's head (size 0)
# and the search index's state. A target holding only these is empty.
_SEED_TABLES = ("ledger_head", "search_state")
# Filled by triggers on the target as ``analysis`` rows are copied: emptied of those and
# copied last, so that it holds exactly the source's rows.
_TRIGGER_FILLED = ("search_queue",)


def model_tables() -> list[Table]:
    """Every table of the model, parents before the tables that refer to them, and the
    tables that triggers fill after the tables whose triggers fill them."""
    import sprava.backends.db.account_tables
    import sprava.backends.db.catalogue_tables
    import sprava.backends.db.inbox_tables
    import sprava.backends.db.search_tables  # noqa: F401  (registers the tables)

    ordered = list(metadata.sorted_tables)
    return ([t for t in ordered if t.name not in _TRIGGER_FILLED]
            + [t for t in ordered if t.name in _TRIGGER_FILLED])


@dataclass(frozen=True)
class TableSum:
    """What a table holds, in a form two databases can compare."""

    rows: int
    digest: str


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return ["f", value.hex()]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["b", bytes(value).hex()]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _row_hash(row: Sequence[Any]) -> int:
    form = json.dumps([_canonical(v) for v in row], ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(form.encode("utf-8")).digest(), "big")


def _rows(conn: Connection, table: Table) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(
        select(*table.columns))
    yield from result


def table_sum(conn: Connection, table: Table) -> TableSum:
    """The count and multiset digest of ``table`` as ``conn`` sees it."""
    total, count = 0, 0
    for row in _rows(conn, table):
        total = (total + _row_hash(row)) % (1 << 256)
        count += 1
    return TableSum(count, f"{total:064x}")


def check_foreign(conn: Connection) -> None:
    """Refuse a target database that holds tables of something other than Sprava (checked
    before the migrations create Sprava's tables in it)."""
    from sqlalchemy import inspect

    from sprava.backends.db.search_tables import is_dialect_object

    ours = {t.name for t in model_tables()} | {"alembic_version"}
    other = sorted(name for name in inspect(conn).get_table_names()
                   if name not in ours and not is_dialect_object(name, "table"))
    if other:
        raise ConflictError(
            f"the target database holds other tables ({', '.join(other[:5])})",
            code="move-target-not-empty",
            hint="move into a new, empty database; Sprava never merges instances")


def check_empty(conn: Connection) -> None:
    """Refuse a target that holds anything beyond what its migrations wrote.

    A move never merges into, or overwrites, a database in use.
    """
    for table in model_tables():
        count = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        if table.name in _SEED_TABLES and count <= 1:
            if table is ledger_head and (conn.execute(select(ledger_head.c.size)).scalar()
                                         or 0) > 0:
                count = 2  # a ledger with leaves is data, whatever else is there
            else:
                continue
        if count:
            raise ConflictError(
                f"the target database already holds data (table {table.name})",
                code="move-target-not-empty",
                hint="move into a new, empty database; Sprava never merges instances")


def _parents_first(rows: list[Sequence[Any]], table: Table) -> list[Sequence[Any]]:
    """Rows of a table that refers to itself (a unit's parent unit), ordered so that each
    row comes after the row it names."""
    refs = [fk for fk in table.foreign_keys if fk.column.table is table]
    if not refs:
        return rows
    key = table.columns.keys().index(refs[0].column.name)
    ref = table.columns.keys().index(refs[0].parent.name)
    by_key = {row[key]: row for row in rows}
    placed: set[Any] = set()
    ordered: list[Sequence[Any]] = []
    for row in rows:
        chain = []
        current: Sequence[Any] | None = row
        while current is not None and current[key] not in placed:
            chain.append(current)
            placed.add(current[key])
            parent = current[ref]
            current = by_key.get(parent) if parent is not None else None
        ordered.extend(reversed(chain))
    return ordered


def copy_tables(source: Connection, target: Connection,
                on_table: Callable[[str, int], None] = lambda _t, _n: None) -> dict[str, int]:
    """Copy every row of every table from ``source`` into the empty ``target``; returns
    the rows copied per table. Runs inside the caller's transactions."""
    for name in _SEED_TABLES:
        target.execute(metadata.tables[name].delete())
    copied: dict[str, int] = {}
    for table in model_tables():
        if table.name in _TRIGGER_FILLED:
            target.execute(table.delete())
        names = table.columns.keys()
        count = 0
        selfref = any(fk.column.table is table for fk in table.foreign_keys)
        batches: Iterator[list[Sequence[Any]]]
        if selfref:
            batches = iter([_parents_first(list(_rows(source, table)), table)])
        else:
            batches = _batched(_rows(source, table))
        for batch in batches:
            if batch:
                target.execute(table.insert(), [dict(zip(names, row, strict=True))
                                                for row in batch])
                count += len(batch)
        copied[table.name] = count
        on_table(table.name, count)
    if target.dialect.name == "postgresql":
        _reset_sequences(target)
    return copied


def _batched(rows: Iterator[Sequence[Any]]) -> Iterator[list[Sequence[Any]]]:
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    yield batch


def _reset_sequences(conn: Connection) -> None:
    """Point each PostgreSQL id sequence past the largest id copied, so that the next row
    written gets a new id (rows were copied with their ids, which a sequence ignores)."""
    for table in model_tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        column = keys[0]
        sequence = conn.execute(select(func.pg_get_serial_sequence(table.name, column.name))
                                ).scalar()
        if sequence is None:
            continue
        largest = func.max(column)
        conn.execute(select(func.setval(sequence, func.coalesce(largest, 1),
                                        largest.is_not(None))).select_from(table))
