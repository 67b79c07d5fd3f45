"""Snapshots of a database (`starfund backup`, `starfund restore`): the copy itself, its manifest.

A snapshot is a folder: the database (SQLite: `starfund.db`, by SQLite's online backup, from
one read transaction; PostgreSQL: `starfund.dump`, by `pg_dump --format=custom` from a
snapshot this module exports, so the dump and the head the manifest names are the same
instant), `manifest.json` (the release, the schema revision, the database's id and mode,
the last event's number and hash, the anchors taken along, each file's size and SHA-256),
the anchors in `anchors/`, the anchor public key, and the keys only when asked for. Both
work while others write: neither blocks a writer, and a batch not committed when the
snapshot began is not in it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, select, text
from sqlalchemy.engine import make_url

from lifecycle.core import db, meta
from lifecycle.core.errors import BadValue, NotFound, UserError
from lifecycle.core.models import AuditHead

FORMAT = "starfund-snapshot/1"
MANIFEST = "manifest.json"
SQLITE_FILE, PG_FILE = "starfund.db", "starfund.dump"
RELEASE = "0.1.0"


class SnapshotError(UserError):
    """A snapshot that cannot be written or restored: the message says why; nothing changed."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _libpq(engine_or_url: Engine | str) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump/pg_restore (the password passed in PGPASSWORD, never argv)."""
    url = make_url(db.resolve_url(engine_or_url) if isinstance(engine_or_url, str)
                   else engine_or_url.url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SnapshotError(f"{name} is not installed: on Debian, apt-get install "
                            "postgresql-client (of the server's major version or later); "
                            "docs/operations.md#backups says how to back up without it")
    return found


def _head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
    return (row.seq, row.hash) if row else (0, "")


def take(engine: Engine, folder: Path) -> dict[str, Any]:
    """Copy the database into `folder` (new or empty) as one consistent snapshot; returns the
    facts of that instant (revision, id, mode, head) for the manifest."""
    if db.is_sqlite(engine):
        target = folder / SQLITE_FILE
        source = sqlite3.connect(engine.url.database)     # reads only
        try:
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)      # every page in one step: one read snapshot
                dest.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
            finally:
                dest.close()
        finally:
            source.close()
        copy = create_engine(f"sqlite:///{target}")
        try:
            with copy.connect() as conn:
                facts = _facts(conn)
        finally:
            copy.dispose()
        return {**facts, "backend": "sqlite", "file": SQLITE_FILE}
    if engine.dialect.name != "postgresql":
        raise SnapshotError(f"backup knows SQLite and PostgreSQL, not {engine.dialect.name}")
    pg_dump = _tool("pg_dump")
    url, env = _libpq(engine)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
            facts = _facts(conn)
            done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                                   f"--snapshot={snapshot}", f"--file={folder / PG_FILE}",
                                   f"--dbname={url}"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SnapshotError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")
    return {**facts, "backend": "postgresql", "file": PG_FILE}


def _facts(conn: Connection) -> dict[str, Any]:
    at, _, _ = db.schema_state(conn)
    seq, digest = _head(conn)
    facts = meta.read(conn)
    return {"revision": at, "database": facts.get(meta.DATABASE_ID),
            "mode": facts.get(meta.MODE), "last_event": {"seq": seq, "hash": digest}}


def write_manifest(folder: Path, facts: dict[str, Any], taken_at: str,
                   anchors: list[dict[str, Any]], with_keys: bool) -> dict[str, Any]:
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": FORMAT, "release": RELEASE, "taken_at": taken_at, **facts,
                "anchors": anchors, "keys_included": with_keys, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The snapshot's manifest, every file checked against it (a truncated, edited or
    incomplete snapshot is refused, naming the file)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise NotFound(f"{folder} is not a starfund snapshot: no {MANIFEST} in it (made by "
                       "`starfund backup --to DIR`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files, kind = manifest["files"], manifest["format"]
        manifest["last_event"]["seq"]
    except (ValueError, KeyError, TypeError) as e:
        raise BadValue(f"{path}: not a starfund snapshot manifest ({type(e).__name__}: {e})") \
            from None
    if kind != FORMAT:
        raise BadValue(f"{path}: format {kind!r}, this starfund reads {FORMAT!r}")
    if manifest.get("file") not in files:
        raise BadValue(f"{path}: names no database file")
    for name, want in files.items():
        p = folder / name
        if not p.is_file():
            raise BadValue(f"{folder}: {name} is missing (the manifest lists it): the snapshot "
                           "is incomplete; nothing was restored")
        size = p.stat().st_size
        if size != want["size"] or sha256(p) != want["sha256"]:
            raise BadValue(f"{p}: {size:,} bytes that do not match the manifest ({want['size']:,}"
                           " bytes, its SHA-256): the snapshot is truncated or was changed; "
                           "nothing was restored")
    return manifest


def is_empty(url: str) -> tuple[bool, str]:
    """Whether the target database holds nothing (a SQLite file not there, or empty; a
    PostgreSQL database without tables): restore writes only into an empty database."""
    resolved = db.resolve_url(url)
    if resolved.startswith("sqlite"):
        path = make_url(resolved).database
        if not path or path == ":memory:":
            return False, "a SQLite database in memory cannot be restored into"
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return False, f"{path} exists and is not empty"
        return True, path
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            found = MetaData()
            found.reflect(conn)
            tables = sorted(found.tables)
    finally:
        engine.dispose()
    if tables:
        return False, (f"the database holds {len(tables)} table(s) already "
                       f"({', '.join(tables[:3])}{', ...' if len(tables) > 3 else ''})")
    return True, ""


def put_back(manifest: dict[str, Any], folder: Path, url: str) -> None:
    """Copy the snapshot's database into the (empty) target."""
    source = folder / manifest["file"]
    resolved = db.resolve_url(url)
    if manifest["backend"] == "sqlite":
        if not resolved.startswith("sqlite"):
            raise SnapshotError("this snapshot is of a SQLite database: restore it into a "
                                "SQLite file (--to FILE)")
        target = make_url(resolved).database
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(target)
            try:
                src.backup(dest)
            finally:
                dest.close()
        finally:
            src.close()
        return
    if not resolved.startswith("postgresql"):
        raise SnapshotError("this snapshot is of a PostgreSQL database: restore it into an "
                            "empty PostgreSQL database (--to postgresql://...)")
    pg_restore = _tool("pg_restore")
    libpq, env = _libpq(url)
    done = subprocess.run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
                           f"--dbname={libpq}", str(source)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SnapshotError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1:]}")


def clear(url: str) -> None:
    """Undo a restore that was then refused: the target is left empty, as it was found."""
    resolved = db.resolve_url(url)
    if resolved.startswith("sqlite"):
        path = make_url(resolved).database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            found = MetaData()
            found.reflect(conn)
            found.drop_all(conn)
    finally:
        engine.dispose()
