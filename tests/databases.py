"""The databases the tests run on: new and empty, or filled as a `World` fills one.

STARFUND_TEST_BACKEND chooses SQLite (the default) or the PostgreSQL server at
STARFUND_TEST_PG. Founding a database for every test (`starfund init`: Alembic, keys,
accounts) cost 0.5 s on SQLite and more on PostgreSQL, building a fixture's world as
much again, and creating and dropping a PostgreSQL database 0.5 to 2 s more (DROP
DATABASE makes the server checkpoint). So a `World` (a database filled the same way
for many tests: founded, or founded with a call, its societies and drafts...) is
built once per session, through the command line as before, and each test that
asks for it gets a copy of it:

- SQLite: a copy of the file;
- PostgreSQL: every table's rows (COPY, binary) and every sequence's position,
  restored into a database from a pool. The pool's databases are copies of a
  template with the schema only (CREATE DATABASE ... TEMPLATE); when its test ends
  a database goes back as new: every other session on it ended, every table emptied
  and every sequence restarted, once a digest of its catalog shows its schema is
  still the template's (tables, columns, constraints, indexes, triggers, functions,
  sequences, the Alembic version) and it has not grown large; otherwise it is dropped.

A founded database notes where its key files were written (meta: chain_key_path,
anchor_key_path); a copy gets its own copies of them in the test's STARFUND_CONFIG_DIR
(where starfund looks for them: never where the database says), as founding it in the
test would have (its database id and keys are the World's).

A test that runs `init` itself asks for a new, empty database, made and dropped as before.
"""
from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("STARFUND_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GROWN = 16 * 2**20
"""A pooled database this much larger than the template is dropped, not emptied for reuse."""


def backend() -> str:
    return os.environ.get("STARFUND_TEST_BACKEND", "sqlite")


_pg_answered = False


def pg_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    global _pg_answered
    if _pg_answered:
        return None
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            _pg_answered = True
            return None
    except Exception as e:  # noqa: BLE001
        return f"no PostgreSQL server at {PG_ADMIN}: {type(e).__name__}: {e}"


def need_postgres() -> None:
    """Skip the test without a PostgreSQL server, except under CI (CI=true), where it fails."""
    why = pg_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but {why}")
        pytest.skip(why)


def pg_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the test server."""
    base = ("postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1]).rsplit("/", 1)[0]
    return f"{base}/{name}"


def _libpq_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


_admin_connection = None


def _admin(sql: str, *params: object) -> list[tuple]:
    """Run a statement on the server's maintenance database (one connection kept open)."""
    global _admin_connection
    import psycopg

    if _admin_connection is None or _admin_connection.closed:
        _admin_connection = psycopg.connect(PG_ADMIN, autocommit=True)
    cur = _admin_connection.execute(sql, params or None)
    return cur.fetchall() if cur.description else []


def close_admin() -> None:
    global _admin_connection
    if _admin_connection is not None:
        _admin_connection.close()
        _admin_connection = None


def _drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_pg_database() -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database: (its URL, what drops it)."""
    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    return pg_url(name), lambda: _drop(name)


def make_schema(db: str) -> None:
    """The newest schema and nothing else: the migrations `starfund init` runs first."""
    from lifecycle.core.db import make_engine, upgrade

    e = make_engine(db)
    try:
        upgrade(e)
    finally:
        e.dispose()


@dataclass(frozen=True)
class World:
    """A database filled by `build(db_url, directory)` on a copy of `base` (or on the bare
    schema): built once per session (`directory` is its own: the files it imports, the
    keys it makes) and copied for each test."""

    name: str
    build: Callable[[str, Path], object]
    base: World | None = None


def _building(world: World, directory: Path, build_on: str) -> None:
    """Build `world` on the database `build_on`, its keys under directory/config."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STARFUND_CONFIG_DIR", str(directory / "config"))
        if world.base is not None:
            rehome_keys(build_on)
        world.build(build_on, directory)


def rehome_keys(db: str) -> None:
    """Give a copied database copies of its key files in this STARFUND_CONFIG_DIR (where
    founding it here would have written them) and name those in its meta table."""
    from lifecycle.core import keys, meta
    from lifecycle.core.db import resolve_url

    url = resolve_url(db)
    if url.startswith("sqlite"):
        conn, mark = sqlite3.connect(url.split(":///", 1)[1]), "?"
    else:
        import psycopg

        conn, mark = psycopg.connect(url.replace("+psycopg", "", 1)), "%s"
    folder = keys.config_dir() / "keys"
    with closing(conn):
        rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({mark}, {mark})",
                            (meta.CHAIN_KEY, meta.ANCHOR_KEY)).fetchall()
        for key, value in rows:
            old, new = Path(value), (folder / Path(value).name).resolve()
            if new != old:
                if not new.exists():
                    keys.write_private(new, old.read_bytes())
                conn.execute(f"UPDATE meta SET value = {mark} WHERE key = {mark}",
                             (str(new), key))
        conn.commit()


def _settled(path: Path) -> None:
    """All of a SQLite database in its main file (the WAL checkpointed), so a copy is whole."""
    gc.collect()   # engines the build left behind close their connections
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        busy, logged, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or logged != moved:
        raise RuntimeError(f"{path}: the WAL could not be checkpointed ({busy}, {logged}, "
                           f"{moved}); a copy would miss rows")


class SqliteTemplate:
    """SQLite files with the bare schema or as each World leaves them, made on first use and
    copied per test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made: dict[str, Path] = {}

    def copy(self, path: Path, world: World | None = None) -> str:
        """A database with the bare schema, or filled by `world`, at `path`; its path."""
        key = world.name if world else "schema"
        if key not in self.made:
            made = self.directory / f"{key}.db"
            if world is None:
                make_schema(str(made))
            else:
                self.copy(made, world.base)
                built_in = self.directory / key
                built_in.mkdir()
                _building(world, built_in, str(made))
            _settled(made)
            self.made[key] = made
        shutil.copyfile(self.made[key], path)
        if world is not None:
            rehome_keys(str(path))
        return str(path)


# Everything a test could change in a database's schema; equal digests, equal schemas.
_USER = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
CATALOG_DIGEST = f"""
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
  SELECT format('schema %s %s', n.nspname, n.nspacl) FROM pg_namespace n WHERE {_USER}
  UNION ALL
  SELECT format('rel %s.%s %s %s %s %s %s', n.nspname, c.relname, c.relkind, c.relpersistence,
                c.relrowsecurity, c.relacl, c.reloptions)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER}
  UNION ALL
  SELECT format('col %s.%s %s %s %s %s', n.nspname, c.relname, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND {_USER}
  UNION ALL
  SELECT format('con %s %s %s', o.conrelid::regclass, o.conname, pg_get_constraintdef(o.oid))
    FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace WHERE {_USER}
  UNION ALL
  SELECT format('idx %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER}
  UNION ALL
  SELECT format('trg %s %s', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('evt %s %s %s', e.evtname, e.evtevent, e.evtenabled) FROM pg_event_trigger e
  UNION ALL
  SELECT format('fn %s %s', p.oid::regprocedure, md5(p.prosrc))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER}
  UNION ALL
  SELECT format('type %s %s', t.oid::regtype, t.typtype)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER}
  UNION ALL
  SELECT format('seq %s %s %s %s %s %s %s', s.seqrelid::regclass, s.seqtypid, s.seqstart,
                s.seqincrement, s.seqmax, s.seqmin, s.seqcycle) FROM pg_sequence s
  UNION ALL
  SELECT format('rule %s %s %s', r.ev_class::regclass, r.rulename, pg_get_ruledef(r.oid))
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER}
  UNION ALL
  SELECT format('policy %s %s %s', p.polrelid::regclass, p.polname, p.polcmd) FROM pg_policy p
  UNION ALL
  SELECT format('ext %s %s', x.extname, x.extversion) FROM pg_extension x
  UNION ALL
  SELECT format('setting %s', s.setconfig) FROM pg_db_role_setting s
    WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL
  SELECT format('alembic %s', v.version_num) FROM alembic_version v
) AS catalog(item)
"""

_TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname), c.oid FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND {_USER} AND c.relname <> 'alembic_version'
"""
_REFERENCES = "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f'"
_SEQUENCES = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND {_USER}
"""


@dataclass
class Snapshot:
    """A PostgreSQL World: each table's rows (COPY, binary) and each sequence's position."""

    rows: dict[str, bytes]
    sequences: list[tuple[str, int, bool]]


class PgPool:
    """PostgreSQL databases as `starfund init` leaves them, reused test after test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template: str | None = None
        self.free: list[str] = []
        self.made: set[str] = set()
        self.worlds: dict[str, Snapshot] = {}

    def _prepare(self) -> None:
        import psycopg

        name = f"sf_tmpl_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}"')
        self.template = name
        make_schema(pg_url(name))
        if not self._end_sessions(name):
            raise RuntimeError(f"sessions left on the template database {name}")
        with psycopg.connect(_libpq_url(name), autocommit=True) as conn:
            self.digest = conn.execute(CATALOG_DIGEST).fetchone()[0]
            tables = dict(conn.execute(_TABLES).fetchall())
            refs = conn.execute(_REFERENCES).fetchall()
            self.sequences = [s for (s,) in conn.execute(_SEQUENCES).fetchall()]
            filled = [t for t in tables
                      if conn.execute(f"SELECT EXISTS (SELECT FROM {t})").fetchone()[0]]
            self.size = conn.execute(
                "SELECT pg_database_size(current_database())").fetchone()[0]
        if filled:   # emptying a used database would then not make it new again
            raise RuntimeError(f"the migrations wrote rows in {filled}: the pool would lose them")
        self.delete_order = _referencing_first(tables, refs)

    def take(self, fresh: bool = False) -> tuple[str, Callable[[], None]]:
        """A database with the bare schema, from the pool (or, `fresh`, a new copy of the
        template): (its URL, what gives it back)."""
        if self.template is None:
            self._prepare()
        if self.free and not fresh:
            name = self.free.pop()
        else:
            name = f"sf_test_{uuid.uuid4().hex[:12]}"
            _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.made.add(name)
        return pg_url(name), lambda: self._give_back(name)

    def take_world(self, world: World) -> tuple[str, Callable[[], None]]:
        """A database filled as `world` fills one: (its URL, what gives it back)."""
        snapshot = self._snapshot_of(world)
        url, give_back = self.take()
        try:
            self.fill(url, snapshot)
        except BaseException:
            give_back()
            raise
        return url, give_back

    def fill(self, url: str, snapshot: Snapshot) -> None:
        """Restore a World's snapshot into a database with the bare schema, keys rehomed."""
        self._restore(url.rsplit("/", 1)[1], snapshot)
        rehome_keys(url)

    def _snapshot_of(self, world: World) -> Snapshot:
        """The World's snapshot, built (on a copy of its base) the first time it is asked for."""
        if world.name not in self.worlds:
            url, give_back = self.take_world(world.base) if world.base else self.take()
            try:
                built_in = self.directory / f"pg-{world.name}"
                built_in.mkdir()
                _building(world, built_in, url)
                self.worlds[world.name] = self._snapshot(url.rsplit("/", 1)[1])
            finally:
                give_back()
        return self.worlds[world.name]

    def _snapshot(self, name: str) -> Snapshot:
        import psycopg

        if not self._end_sessions(name):
            raise RuntimeError(f"sessions left on {name} after building a world")
        rows: dict[str, bytes] = {}
        with psycopg.connect(_libpq_url(name)) as conn, conn.cursor() as cur:
            for table in self.delete_order:
                if conn.execute(f"SELECT EXISTS (SELECT FROM {table})").fetchone()[0]:
                    with cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                        rows[table] = b"".join(bytes(part) for part in copy)
            sequences = [(s, *conn.execute(f"SELECT last_value, is_called FROM {s}").fetchone())
                         for s in self.sequences]
        return Snapshot(rows, [(s, v, called) for s, v, called in sequences if called])

    def _restore(self, name: str, snapshot: Snapshot) -> None:
        import psycopg

        with psycopg.connect(_libpq_url(name)) as conn, conn.cursor() as cur:
            for table in reversed(self.delete_order):      # referenced rows first
                if table in snapshot.rows:
                    with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                        copy.write(snapshot.rows[table])
            for sequence, value, called in snapshot.sequences:
                cur.execute("SELECT setval(%s, %s, %s)", (sequence, value, called))

    def _give_back(self, name: str) -> None:
        if self._end_sessions(name) and self._empty(name):
            self.free.append(name)
        else:
            self.made.discard(name)
            _drop(name)

    def _end_sessions(self, name: str, timeout: float = 30) -> bool:
        """End every other session on the database (as DROP ... WITH (FORCE) would)."""
        deadline = time.monotonic() + timeout
        while True:
            (left,), = _admin("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", name)
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _empty(self, name: str) -> bool:
        """Make the database new again; False (and unchanged) if it cannot be."""
        import psycopg

        try:
            with psycopg.connect(_libpq_url(name)) as conn:
                conn.execute("SET LOCAL lock_timeout = '10s'")
                digest = conn.execute(CATALOG_DIGEST).fetchone()[0]
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
                if digest != self.digest or size > self.size + GROWN:
                    conn.rollback()
                    return False
                conn.execute("; ".join([f"DELETE FROM {table}" for table in self.delete_order] +
                                       [f"ALTER SEQUENCE {s} RESTART" for s in self.sequences]))
            return True
        except psycopg.Error:
            return False

    def close(self) -> None:
        for name in sorted(self.made):
            _drop(name)
        if self.template is not None:
            _drop(self.template)
        self.made.clear()
        self.free.clear()
        self.template = None


def _referencing_first(tables: dict[str, int], refs: list[tuple[int, int]]) -> list[str]:
    """The tables in an order that deletes every referencing row before the row it references."""
    name = {oid: t for t, oid in tables.items()}
    referenced_by: dict[int, set[int]] = {oid: set() for oid in name}
    for child, parent in refs:
        if child != parent and child in name and parent in name:
            referenced_by[parent].add(child)
    order: list[str] = []
    done: set[int] = set()

    def visit(oid: int, path: tuple[int, ...] = ()) -> None:
        if oid in done:
            return
        if oid in path:
            raise RuntimeError(f"foreign keys form a cycle through {name[oid]}")
        for child in sorted(referenced_by[oid]):
            visit(child, (*path, oid))
        done.add(oid)
        order.append(name[oid])

    for oid in sorted(name):
        visit(oid)
    return order


class Databases:
    """The session's database maker: new empty databases, and initialised ones from templates."""

    def __init__(self, directory: Path) -> None:
        self.sqlite = SqliteTemplate(directory)
        self.pool = PgPool(directory)

    def postgres(self, world: World | None = None) -> tuple[str, Callable[[], None]]:
        """A PostgreSQL database, new and empty or filled as `world` fills one:
        (its URL, what ends it)."""
        need_postgres()
        return self.pool.take_world(world) if world is not None else new_pg_database()

    def close(self) -> None:
        if self.pool.template is not None:
            self.pool.close()
        close_admin()
