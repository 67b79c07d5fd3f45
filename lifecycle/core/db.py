"""Where the database is and how to talk to it.

SQLite (a file, the embedded default) and PostgreSQL (psycopg 3) are chosen by
URL. Every write on SQLite starts with BEGIN IMMEDIATE so that two writers
serialise on the write lock instead of failing late; on PostgreSQL writers
serialise on row locks (see `lifecycle.engine.engine` and `lifecycle.core.audit`).
"""
from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session

from lifecycle.core.errors import NotFound, SchemaMismatch

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_DB = "starfund.db"
READ_ONLY = "starfund_read_only"
"""Execution option of a `reading` connection: on SQLite its BEGIN is deferred, not IMMEDIATE."""


def resolve_url(db: str | None = None) -> str:
    """Turn `--db`/STARFUND_DB (a file path or any SQLAlchemy URL, resolved by the command
    line's settings) into a URL; None is the default file."""
    db = db or DEFAULT_DB
    if "://" in db:
        if db.startswith("postgresql://") or db.startswith("postgres://"):
            db = "postgresql+psycopg://" + db.split("://", 1)[1]
        return db
    return f"sqlite:///{db}"


def make_engine(db: str | None = None) -> Engine:
    """An Engine for `db`, with SQLite set up for WAL, foreign keys and immediate write locks."""
    url = resolve_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        _sqlite_setup(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA secure_delete=FAST")  # deleted values zeroed where it costs no I/O
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(READ_ONLY):  # see `reading`
            conn.exec_driver_sql("PRAGMA query_only=ON")
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("PRAGMA query_only=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def scrub(engine: Engine) -> None:
    """After an erasure or a purge: SQLite's write-ahead log still holds the pages as they
    were; checkpoint it into the database and truncate it, so the file keeps no old copy."""
    if is_sqlite(engine):
        raw = engine.raw_connection()    # outside any transaction (ours begin IMMEDIATE)
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads, on one snapshot throughout (a page, a report or `audit
    verify` never mixes data from before and after another's commit). On SQLite (WAL) it does
    not take the write lock, so readers never wait for writers nor for each other, and any
    write in it fails at once (query_only); on PostgreSQL it is REPEATABLE READ, READ ONLY
    (which never fails for serialisation)."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls everything back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # inside: only `init` needs Alembic (CLI start-up)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> str:
    """Create or upgrade the schema to the newest migration; returns what was done."""
    from alembic import command  # inside: only `init` needs Alembic (CLI start-up)

    existed = "calls" in inspect(engine).get_table_names()
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return "upgraded" if existed else "created"


_REVISION = re.compile(r"^(down_)?revision\s*=\s*(.+?)\s*$", re.M)


@functools.cache
def revisions() -> dict[str, tuple[str, ...]]:
    """Every migration of this release: revision -> the revisions it follows, read from the
    files' `revision` and `down_revision` lines (cheap: every command asks, and Alembic is
    not imported for it; tests/test_migrations.py checks it agrees with Alembic)."""
    out: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = {bool(m.group(1)): ast.literal_eval(m.group(2))
                 for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if False in found:
            down = found.get(True)
            out[found[False]] = tuple(down) if isinstance(down, (tuple, list)) else \
                ((down,) if down else ())
    return out


def heads() -> tuple[str, ...]:
    """This release's newest revision(s): the schema every command needs."""
    known = revisions()
    followed = {d for downs in known.values() for d in downs}
    return tuple(sorted(r for r in known if r not in followed))


def has_table(conn: Connection, name: str) -> bool:
    """Whether the table exists: one catalog lookup (cheaper than SQLAlchemy's inspector,
    which /healthz would pay at every call)."""
    if conn.dialect.name == "sqlite":
        return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                 "name = :n"), {"n": name}).first() is not None
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None
    return name in inspect(conn).get_table_names()


def current(conn: Connection) -> tuple[str, ...] | None:
    """The revision(s) the database is at (None: no Alembic table, made by no migration)."""
    if not has_table(conn, "alembic_version"):
        return None
    return tuple(sorted(r for (r,) in conn.execute(text("SELECT version_num FROM "
                                                        "alembic_version"))))


def schema_state(conn: Connection) -> tuple[str, str, bool]:
    """(the database's revision, the one this release needs, whether they are the same)."""
    at = current(conn)
    need = heads()
    shown = ", ".join(at) if at else "none"
    return shown, ", ".join(need), at == need


def require_schema(engine: Engine) -> None:
    """Refuse clearly to work on a database that `starfund init` has not prepared, or whose
    schema is not this release's (older: `init` upgrades it; newer: a later release made it)."""
    with reading(engine) as conn:  # only reads: never waits for a writer's lock
        if not has_table(conn, "calls"):
            raise NotFound(f"no starfund database at {engine.url.render_as_string()}: run "
                           "`starfund init` first")
        at, need, same = schema_state(conn)
    if same:
        return
    if all(r in revisions() for r in at.split(", ")):
        raise SchemaMismatch(f"database at revision {at}, this starfund needs {need}: run "
                             "`starfund init` to upgrade (back it up first: `starfund backup`)")
    raise SchemaMismatch(f"database at revision {at}, this starfund needs {need}: revision "
                         f"{at} is newer than this release knows (a later starfund upgraded "
                         "it); run that release: going back is not supported (restore a "
                         "backup taken before the upgrade)")
