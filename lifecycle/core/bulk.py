"""Bulk writes at the speed of the database driver, inside the caller's transaction.

A batch advance of 100,000 applications spent most of its time in
SQLAlchemy's per-row parameter processing (dicts, type processors, compiled
parameter lists). These helpers keep SQLAlchemy for the schema and the
transaction, and hand the rows to the driver as tuples:

- SQLite: the raw sqlite3 cursor's `executemany` (a C loop);
- PostgreSQL: `COPY ... FROM STDIN` for appends (through a scratch table and
  one INSERT ... ON CONFLICT for inserts that skip duplicates), and one
  statement over `jsonb_to_recordset` for version-checked updates, instead of
  one round trip per row.

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
spans many chunks with a few hundred rows (`chunk_rows`).
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
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
                rows: Sequence[Sequence[Any]]) -> None:
    """Append rows (tuples in `columns` order); COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    _append(conn, table, columns, rows)
    if _PAUSE_AFTER:
        _wrote(len(rows), table.name)


def _append(conn: Connection, table: Table, columns: Sequence[str],
            rows: Sequence[Sequence[Any]]) -> None:
    if is_postgres(conn):
        cur = _cursor(conn)
        procs = [_pg_copy_processor(table.c[c].type) for c in columns]
        with cur.copy(f'COPY "{table.name}" ({_quoted(columns)}) FROM STDIN') as copy:
            if any(procs):
                for r in rows:
                    copy.write_row([v if p is None or v is None else p(v)
                                    for p, v in zip(procs, r)])
            else:
                for r in rows:
                    copy.write_row(r)
        return
    marks = ", ".join("?" * len(columns))
    _cursor(conn).executemany(f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({marks})',
                              as_tuples(conn, table, columns, rows))


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
    on_conflict = f"ON CONFLICT ({_quoted(conflict)}) DO NOTHING"
    if is_postgres(conn):
        # COPY into a scratch table shaped like the target, then one INSERT ... ON CONFLICT.
        cur = _cursor(conn)
        scratch = f"_bulk_{table.name}"
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{scratch}" ON COMMIT DROP AS '
                    f'SELECT {_quoted(columns)} FROM "{table.name}" WITH NO DATA')
        cur.execute(f'TRUNCATE "{scratch}"')
        shape = _scratch_table(table, scratch, columns)
        for start in range(0, len(rows), chunk):
            _append(conn, shape, columns, [[r[c] for c in columns]
                                           for r in rows[start:start + chunk]])
        cur.execute(f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT {_quoted(columns)} '
                    f'FROM "{scratch}" {on_conflict}')
        cur.execute(f'DROP TABLE "{scratch}"')
        if _PAUSE_AFTER:
            _wrote(len(rows), table.name)
        return
    marks = ", ".join("?" * len(columns))
    sql = f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({marks}) {on_conflict}'
    cur = _cursor(conn)
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        cur.executemany(sql, as_tuples(conn, table, columns, ([r[c] for c in columns] for r in part)))
        if _PAUSE_AFTER:
            _wrote(len(part), table.name)


def insert_ready_ignore(conn: Connection, table: Table, columns: Sequence[str],
                        rows: Sequence[Sequence[Any]], conflict: Sequence[str]) -> None:
    """`insert_ignore` for rows already in the driver's values (tuples in `columns` order;
    JSON columns as their text): no per-row processing at all."""
    if not rows:
        return
    on_conflict = f"ON CONFLICT ({_quoted(conflict)}) DO NOTHING"
    cur = _cursor(conn)
    if is_postgres(conn):
        scratch = f"_bulk_{table.name}"
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{scratch}" ON COMMIT DROP AS '
                    f'SELECT {_quoted(columns)} FROM "{table.name}" WITH NO DATA')
        cur.execute(f'TRUNCATE "{scratch}"')
        with cur.copy(f'COPY "{scratch}" ({_quoted(columns)}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row(r)
        cur.execute(f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT {_quoted(columns)} '
                    f'FROM "{scratch}" {on_conflict}')
        cur.execute(f'DROP TABLE "{scratch}"')
    else:
        marks = ", ".join("?" * len(columns))
        cur.executemany(f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({marks}) '
                        f'{on_conflict}', rows)
    if _PAUSE_AFTER:
        _wrote(len(rows), table.name)


def _scratch_table(table: Table, name: str, columns: Sequence[str]) -> Table:
    from sqlalchemy import Column, MetaData

    return Table(name, MetaData(), *(Column(c, table.c[c].type) for c in columns))


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
