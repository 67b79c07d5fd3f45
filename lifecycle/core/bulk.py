"""Bulk writes at the speed of the database driver, inside the caller's transaction.

A batch advance of 100,000 applications spent most of its time in
SQLAlchemy's per-row parameter processing (dicts, type processors, compiled
parameter lists). These helpers keep SQLAlchemy for the schema and the
transaction, and hand the rows to the driver as tuples:

- SQLite: the raw sqlite3 cursor's `executemany` (a C loop);
- PostgreSQL: from COPY_FROM_ROWS rows on, `COPY ... FROM STDIN`, streamed: the
  rows are written into the COPY as the caller makes them (a generator), so the
  server inserts while Python builds the next rows. Inserts that skip duplicates
  COPY straight into the table inside a SAVEPOINT; the rare chunk that meets a key
  already there is rolled back to it and inserted again with ON CONFLICT DO NOTHING
  (the rows are kept for that). Below COPY_FROM_ROWS, psycopg's pipelined
  `executemany` (one round trip, where a COPY and its savepoint take three).
  Version-checked updates are one statement over `jsonb_to_recordset` at any size.

Values go through the column types' own bind processors on SQLite (so
datetimes and JSON are stored exactly as SQLAlchemy would store them).
Reading a large batch (`stream_rows`) goes chunk by chunk through the raw
driver and returns light tuples whose JSON and date columns are decoded only
when read.

Test hook (tests/test_faults.py), read once when the module is imported: with
STARFUND_FAULT_PAUSE_AFTER_ROWS=N, once the writes of this module have put N
rows in the database (counted per statement or chunk, states, audit events,
outbox and deadline rows alike), the process writes the file named by
STARFUND_FAULT_MARKER (if set) and a line on stderr, saying after how many rows
and in which table, and then blocks inside the open transaction, so a test can
kill it exactly there. Not killed within STARFUND_FAULT_PAUSE_SECONDS (default
300), it raises and the transaction rolls back. Unset, the cost is one test of
a module constant per statement or chunk, nothing per row. With
STARFUND_FAULT_CHUNK_ROWS=M, everything that goes in chunks (an advance, which
reads, decides and writes M applications at a time; audit events, `insert_dicts`
and `insert_ignore`) takes M rows a chunk instead of its own thousands, so a test
spans many chunks with a few hundred rows (`chunk_rows`). With
STARFUND_FAULT_COPY_FROM_ROWS=K, PostgreSQL writes go through COPY from K rows on
(1: always; a large K: never), so a test runs either path (COPY_FROM_ROWS).
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    Integer,
    Numeric,
    Select,
    String,
    Table,
    Text,
    cast,
)

from lifecycle.core.settings import FaultHooks

Processor = Callable[[Any], Any] | None
_SIMPLE = (Integer, Float, Numeric, String, Text, Boolean)


# --- the fault-injection test hook (see the module docstring) ------------------------------

_HOOKS = FaultHooks()  # read once, at import (lifecycle.core.settings)


def _rows_setting(name: str, value: str | None) -> int:
    value = (value or "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive whole number of rows, got {value!r}")
    return int(value)


_PAUSE_AFTER = _rows_setting("STARFUND_FAULT_PAUSE_AFTER_ROWS", _HOOKS.fault_pause_after_rows)
_CHUNK_ROWS = _rows_setting("STARFUND_FAULT_CHUNK_ROWS", _HOOKS.fault_chunk_rows)
_written = 0

COPY_FROM_ROWS = _rows_setting("STARFUND_FAULT_COPY_FROM_ROWS", _HOOKS.fault_copy_from_rows) or 16
"""PostgreSQL: a write of at least this many rows goes through COPY, a smaller one through
executemany (one pipelined round trip). Measured with bench/copy_switch.py (docs/performance.md):
a binary COPY append is as fast from 2 rows on, twice as fast from 8; an insert that skips
duplicates pays a SAVEPOINT and its RELEASE around its COPY and draws level at 8 to 16 rows.
Tests set it (1, or a large number) to run each path."""


def chunk_rows(default: int) -> int:
    """Rows per chunk of a batch write: `default`, unless the test hook sets its own."""
    return _CHUNK_ROWS or default


def _wrote(rows: int, table: str) -> None:
    """Count rows written; on reaching STARFUND_FAULT_PAUSE_AFTER_ROWS, announce and block."""
    global _written
    before, _written = _written, _written + rows
    if before < _PAUSE_AFTER <= _written:
        import threading
        import time

        line = (f"starfund fault hook: paused inside the write after {_written} rows, "
                f"in {table} (pid {os.getpid()})")
        marker = _HOOKS.fault_marker
        if marker:
            part = f"{marker}.part"
            with open(part, "w", encoding="utf-8") as f:
                f.write(line + "\n")
            os.replace(part, marker)                    # the reader never sees half a line
        print(line, file=sys.stderr, flush=True)
        seconds = _HOOKS.fault_pause_seconds
        started = time.monotonic()
        threading.Event().wait(seconds)
        raise RuntimeError(f"fault hook: not killed within {time.monotonic() - started:.0f} s "
                           "of pausing; the transaction rolls back")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def processors(conn: Connection, table: Table, columns: Sequence[str]) -> list[Processor]:
    """The bind processors SQLAlchemy would apply to these columns on this connection."""
    d = conn.dialect
    out: list[Processor] = []
    for c in columns:
        p = table.c[c].type.dialect_impl(d).bind_processor(d)
        out.append(p if p is None or isinstance(table.c[c].type, JSON) else _remembering(p))
    return out


def _remembering(p: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A processor that converts a repeated value once (a batch's rows share `now`)."""
    seen: dict[Any, Any] = {}

    def process(v: Any) -> Any:
        try:
            return seen[v]
        except KeyError:
            if len(seen) > 1024:
                seen.clear()
            out = seen[v] = p(v)
            return out
    return process


def as_tuples(conn: Connection, table: Table, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
    """Rows (in `columns` order) with each value made ready for the raw driver."""
    procs = [(i, p) for i, p in enumerate(processors(conn, table, columns)) if p is not None]
    if not procs:
        return rows if isinstance(rows, list) else list(rows)
    out = []
    for r in rows:
        r = list(r)
        for i, p in procs:
            v = r[i]
            if v is not None:
                r[i] = p(v)
        out.append(r)
    return out


def raw_cursor(conn: Connection):
    """A cursor of the driver itself (sqlite3, psycopg) on this connection."""
    return conn.connection.driver_connection.cursor()


_cursor = raw_cursor


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _pg_types(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}" {table.c[c].type.compile(dialect=conn.dialect)}' for c in columns)


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], *, binary: bool = False) -> int:
    """Append rows (tuples in `columns` order, a list or a generator); returns how many.

    On PostgreSQL a generator is consumed inside the COPY (see the module docstring).
    `binary`: the values are already of the driver's types for the columns (int, str,
    datetime, None; a JSON column's value as its text), so the COPY goes in PostgreSQL's
    binary format: no text for psycopg to build nor for the server to parse."""
    if is_postgres(conn):
        procs = [_pg_copy_processor(table.c[c].type) for c in columns]
        if any(procs) and not binary:
            rows = ([v if p is None or v is None else p(v) for p, v in zip(procs, r)]
                    for r in rows)
        written = _pg_write(conn, table, columns, rows, binary=binary)
    else:
        rows = as_tuples(conn, table, columns, rows)
        marks = ", ".join("?" * len(columns))
        _cursor(conn).executemany(
            f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({marks})', rows)
        written = len(rows)
    if _PAUSE_AFTER and written:
        _wrote(written, table.name)
    return written


def _ahead(rows: Iterable[Sequence[Any]], n: int) -> tuple[list[Sequence[Any]],
                                                          Iterable[Sequence[Any]], bool]:
    """The first `n` rows as a list, the rest, and whether there may be more (the switch)."""
    if isinstance(rows, list):
        return rows, (), len(rows) >= n
    rows = iter(rows)
    head: list[Sequence[Any]] = []
    for r in rows:
        head.append(r)
        if len(head) >= n:
            return head, rows, True
    return head, (), False


def _pg_write(conn: Connection, table: Table, columns: Sequence[str],
              rows: Iterable[Sequence[Any]], conflict: Sequence[str] | None = None,
              binary: bool = False) -> int:
    """Rows already in the driver's values into `table`: COPY from COPY_FROM_ROWS rows on,
    else executemany; with `conflict`, rows whose key is already there are skipped."""
    cur = _cursor(conn)
    head, rest, more = _ahead(rows, COPY_FROM_ROWS)
    if not more:
        if head:
            cur.executemany(_pg_insert(table.name, columns, conflict), head)
        return len(head)
    copy_sql = f'COPY "{table.name}" ({_quoted(columns)}) FROM STDIN'
    types = _binary_types(conn, table, tuple(columns)) if binary else None
    if types:
        copy_sql += " (FORMAT BINARY)"
    if conflict is None:
        return _copy(cur, copy_sql, chain(head, rest), types)
    from psycopg.errors import UniqueViolation

    kept = head                     # grows with the rows read: what a second try inserts

    def streamed() -> Iterator[Sequence[Any]]:
        yield from head
        for r in rest:
            kept.append(r)
            yield r

    cur.execute("SAVEPOINT sf_copy")
    try:
        written = _copy(cur, copy_sql, streamed(), types)
    except UniqueViolation:
        # A key of this chunk is already there (or twice in it): undo this COPY alone and
        # insert the same rows skipping those keys, as ON CONFLICT DO NOTHING does.
        cur.execute("ROLLBACK TO SAVEPOINT sf_copy")
        kept.extend(rest)                               # what the COPY had not read yet
        cur.executemany(_pg_insert(table.name, columns, conflict), kept)
        written = len(kept)
    cur.execute("RELEASE SAVEPOINT sf_copy")
    return written


def _copy(cur: Any, sql: str, rows: Iterable[Sequence[Any]],
          types: list[str] | None = None) -> int:
    """One COPY of the rows, each written as it is made: the server inserts the first while
    the caller makes the next. With `types`, in the binary format."""
    n = 0
    with cur.copy(sql) as copy:
        if types:
            copy.set_types(types)
        write = copy.write_row
        for r in rows:
            write(r)
            n += 1
    return n


_BINARY = {"VARCHAR": "text", "TEXT": "text", "JSON": "text", "INTEGER": "int4",
           "BIGINT": "int8", "SMALLINT": "int2", "BOOLEAN": "bool", "FLOAT": "float8",
           "TIMESTAMP WITHOUT TIME ZONE": "timestamp", "TIMESTAMP": "timestamp",
           "TIMESTAMP WITH TIME ZONE": "timestamptz", "DATE": "date"}
"""Column types as COPY's binary format takes them from psycopg. A JSON column's value is
its text, and json's binary form is that text; a VARCHAR's is a TEXT's."""


@functools.lru_cache(maxsize=64)
def _binary_types_of(dialect: Any, table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    names = [table.c[c].type.compile(dialect=dialect).split("(")[0].strip() for c in columns]
    return tuple(_BINARY.get(n, "") for n in names)


def _binary_types(conn: Connection, table: Table, columns: tuple[str, ...]) -> list[str] | None:
    """The columns' types for a binary COPY; None (a text COPY) if one has no entry here."""
    types = _binary_types_of(conn.dialect, table, columns)
    return list(types) if all(types) else None


def _pg_insert(table: str, columns: Sequence[str], conflict: Sequence[str] | None) -> str:
    tail = f" ON CONFLICT ({_quoted(conflict)}) DO NOTHING" if conflict else ""
    return (f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES '
            f'({", ".join(["%s"] * len(columns))}){tail}')


def insert_dicts(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                 chunk: int = 10000) -> None:
    """Append rows given as dicts, filling the columns' Python-side defaults like SQLAlchemy."""
    if not rows:
        return
    chunk = chunk_rows(chunk)
    defaults: dict[str, tuple[Any, bool]] = {}
    for col in table.c:
        if col.default is not None and not col.primary_key:
            defaults[col.name] = (col.default.arg, col.default.is_callable)
    given = list(dict.fromkeys(k for r in rows for k in r))
    columns = given + [c for c in defaults if c not in given]

    def value(r: dict[str, Any], c: str) -> Any:
        if c in r:
            return r[c]
        arg, call = defaults.get(c, (None, False))
        return arg(None) if call else arg

    for start in range(0, len(rows), chunk):
        insert_rows(conn, table, columns, [[value(r, c) for c in columns]
                                           for r in rows[start:start + chunk]])


def _pg_copy_processor(type_: Any) -> Processor:
    if isinstance(type_, JSON):
        return lambda v: json.dumps(v, ensure_ascii=False, default=_json_default)
    return None


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                  conflict: Sequence[str], chunk: int = 10000) -> None:
    """INSERT rows (dicts), skipping those whose `conflict` columns already exist."""
    if not rows:
        return
    chunk = chunk_rows(chunk)
    columns = list(rows[0])
    if is_postgres(conn):
        procs = [_pg_copy_processor(table.c[c].type) for c in columns]
        for start in range(0, len(rows), chunk):
            insert_ready_ignore(conn, table, columns, [
                [v if p is None or v is None else p(v) for p, v in zip(procs, (r[c] for c in columns))]
                for r in rows[start:start + chunk]], conflict)
        return
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        insert_ready_ignore(conn, table, columns, as_tuples(
            conn, table, columns, ([r[c] for c in columns] for r in part)), conflict)


def insert_ready_ignore(conn: Connection, table: Table, columns: Sequence[str],
                        rows: Iterable[Sequence[Any]], conflict: Sequence[str]) -> int:
    """`insert_ignore` for rows already in the driver's values (tuples in `columns` order;
    JSON columns as their text; a list or a generator): no per-row processing at all.
    Returns the rows given (those skipped as duplicates included)."""
    if is_postgres(conn):
        written = _pg_write(conn, table, columns, rows, conflict, binary=True)
    else:
        rows = rows if isinstance(rows, list) else list(rows)
        marks = ", ".join("?" * len(columns))
        _cursor(conn).executemany(f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES '
                                  f'({marks}) ON CONFLICT ({_quoted(conflict)}) DO NOTHING', rows)
        written = len(rows)
    if _PAUSE_AFTER and written:
        _wrote(written, table.name)
    return written


def update_versioned(conn: Connection, table: Table, set_values: dict[str, Any],
                     columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Version-checked UPDATE of many rows in one statement; returns the rows updated.

    Each row is (id, version, *values of `columns`); a row is updated only if its
    version is still the one given (then version + 1), and gets `set_values`
    (the same for all) and its own `columns` values. The caller compares the
    count with len(rows): fewer means someone else changed a row first.
    """
    if not rows:
        return 0
    written = _update(conn, table, set_values, columns, rows)
    if _PAUSE_AFTER:
        _wrote(written, table.name)
    return written


def _update(conn: Connection, table: Table, set_values: dict[str, Any],
            columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    simple = all(isinstance(table.c[c].type, _SIMPLE) for c in columns)
    if not simple:
        return _update_executemany(conn, table, set_values, columns, rows)
    fixed = list(set_values)
    cur = _cursor(conn)
    names = ["x_id", "x_version"] + [f"x_{c}" for c in columns]
    if is_postgres(conn):
        payload = json.dumps([dict(zip(names, r)) for r in rows], ensure_ascii=False,
                             default=_json_default)
        types = ", ".join([f"x_id {table.c.id.type.compile(dialect=conn.dialect)}",
                           "x_version integer"] +
                          [f"x_{c} {table.c[c].type.compile(dialect=conn.dialect)}"
                           for c in columns])
        sets = ", ".join([f'"{c}" = %s' for c in fixed] + ['"version" = t."version" + 1'] +
                         [f'"{c}" = x.x_{c}' for c in columns])
        cur.execute(
            f'UPDATE "{table.name}" AS t SET {sets} '
            f"FROM jsonb_to_recordset(%s::jsonb) AS x({types}) "
            f'WHERE t."id" = x.x_id AND t."version" = x.x_version',
            [*set_values.values(), payload])
        return cur.rowcount
    payload = json.dumps(rows, ensure_ascii=False, default=_json_default)
    procs = processors(conn, table, fixed)
    values = [v if p is None or v is None else p(v) for p, v in zip(procs, set_values.values())]
    selects = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
    sets = ", ".join([f'"{c}" = ?' for c in fixed] + ['"version" = "version" + 1'] +
                     [f'"{c}" = x.x_{c}' for c in columns])
    cur.execute(
        f'UPDATE "{table.name}" SET {sets} FROM (SELECT {selects} FROM json_each(?)) AS x '
        f'WHERE "{table.name}"."id" = x.x_id AND "{table.name}"."version" = x.x_version',
        (*values, payload))
    return cur.rowcount


def _update_executemany(conn: Connection, table: Table, set_values: dict[str, Any],
                        columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """The general path (e.g. JSON or datetime columns among the per-row values)."""
    from sqlalchemy import bindparam, update

    stmt = (update(table)
            .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
            .values(version=table.c.version + 1,
                    **{c: bindparam(c) for c in (*set_values, *columns)}))
    params = [{"b_id": r[0], "b_version": r[1], **set_values,
               **dict(zip(columns, r[2:]))} for r in rows]
    written = 0
    for start in range(0, len(params), 10000):
        written += conn.execute(stmt, params[start:start + 10000]).rowcount
    return written


# --- reading many rows --------------------------------------------------------------

def json_as_text(columns: Iterable[Any]) -> list[Any]:
    """Select JSON columns as their text, for the rows to decode when (if ever) they are read."""
    return [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in columns]


_TUPLE_NAMES = frozenset(dir(tuple))


def _lazy(i: int, convert: Callable[[Any], Any]) -> property:
    def get(self: tuple) -> Any:
        v = self[i]
        return None if v is None else convert(v)
    return property(get)


def _record_type(keys: tuple[str, ...], converters: dict[int, Callable[[Any], Any]]) -> type:
    """A tuple of the driver's own values whose attributes are the columns: plain values
    straight from the tuple (a C getter), the others (JSON text, SQLite's dates and
    booleans) converted when a condition or a message reads them, not for every row."""
    clash = [k for k in keys if k in _TUPLE_NAMES or not k.isidentifier()]
    if clash:
        raise ValueError(f"columns {clash} cannot be attributes of a row")
    ns: dict[str, Any] = {"__slots__": (), "_fields": keys}
    for i, k in enumerate(keys):
        ns[k] = _lazy(i, converters[i]) if i in converters else property(itemgetter(i))
    return type("Row", (tuple,), ns)


def _sorted_whole(cur: Any, sql: str, params: list[Any]) -> None:
    """Refuse a SQLite stream whose rows would come straight off a table being written.

    Safe are a sort of the whole result ("USE TEMP B-TREE FOR ORDER BY", not its "RIGHT
    PART"), finished before the first row, and a search by primary key (`only` these ids:
    each row met once, by its key). Read off another index, the rows an advance updates
    between two chunks could be met again or skipped: an index added later that happens to
    give the candidates' order fails here, loudly, not in a batch's result.
    """
    if sql in _SORTED:
        return
    plan = [row[-1] for row in cur.execute("EXPLAIN QUERY PLAN " + sql, params)]
    if "USE TEMP B-TREE FOR ORDER BY" not in plan and not _BY_KEY.match(plan[0]):
        raise RuntimeError("a streamed read on SQLite must be sorted whole before its first "
                           f"row, but its plan is {plan}: {sql}")
    if len(_SORTED) < 256:
        _SORTED.add(sql)


_SORTED: set[str] = set()
_BY_KEY = re.compile(r"SEARCH \w+ USING (COVERING )?INDEX sqlite_autoindex_\w+_1 \(id=\?\)$")


def stream_rows(conn: Connection, stmt: Select, json_columns: Iterable[str],
                size: int) -> Iterator[list[Any]]:
    """The rows of `stmt`, `size` at a time, as light tuples with the columns as attributes.

    Read through the raw driver inside the caller's transaction, so the statements run
    between two chunks (the writes of an advance) go on the same connection:

    - PostgreSQL: a server-side cursor (DECLARE ... FETCH); a cursor sees the snapshot
      it was declared in, never the rows written after it in the same transaction;
    - SQLite: `stmt` must end in an ORDER BY no index gives (the engine's candidates:
      declared_at, id), so SQLite sorts the whole result before returning its first row
      and later writes to the table cannot change what the rest of the read returns. Its
      plan is checked first (`_sorted_whole`): a statement an index orders is refused.

    Only one chunk is held at a time. JSON columns (selected as text, `json_as_text`) are
    decoded on access, like the other values the driver does not give as Python wants.
    """
    d = conn.dialect
    compiled = stmt.compile(dialect=d, compile_kwargs={"render_postcompile": True})
    if is_postgres(conn):
        cur = conn.connection.driver_connection.cursor(name=f"sf_stream_{id(compiled):x}")
        cur.itersize = size
        cur.execute(str(compiled), compiled.params)
    else:
        cur = _cursor(conn)
        sql, params = str(compiled), [compiled.params[k] for k in compiled.positiontup]
        _sorted_whole(cur, sql, params)
        cur.execute(sql, params)
    wanted = set(json_columns)
    keys = tuple(c.key for c in stmt.selected_columns)
    converters: dict[int, Callable[[Any], Any]] = {}
    for i, (c, described) in enumerate(zip(stmt.selected_columns, cur.description)):
        if c.key in wanted:
            converters[i] = json.loads
            continue
        p = c.type.dialect_impl(d).result_processor(d, described[1])
        if p is not None:
            converters[i] = p
    record = _record_type(keys, converters)
    try:
        while True:
            part = cur.fetchmany(size)
            if not part:
                break
            yield list(map(record, part))
            del part
    finally:
        try:
            cur.close()
        except Exception:  # noqa: BLE001 - the transaction already failed; its error is raised
            pass
