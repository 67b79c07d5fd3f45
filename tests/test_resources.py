"""Running out of a resource ends a command with one line and costs nothing (issue 29).

The disk fills for real: a small tmpfs is mounted (root only; skipped with the reason
elsewhere). SQLite's database lives on it; PostgreSQL's audit table is moved to a
tablespace on it. An advance that runs out of room prints one line naming the disk and
saying nothing was written, never a traceback (SQLite's "no such savepoint" used to hide
"database or disk is full"), and the database is exactly as it was. A full outbox folder
defers the messages without charging an attempt and leaves no temporary files.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from databases import backend
from processes import command
from worlds import CALL, EXAMPLE_CALL, Cli, applications, fingerprint, societies, write_csv

from lifecycle.core import db as dbmod

MANY = 1500
"""Applications advanced: their events and moves need far more room than is left."""


def _mount(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("filling a disk for real needs a small file system, and mounting one "
                    "needs root")
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                        str(where)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"this machine cannot mount a small tmpfs: {r.stderr.strip()}")


def _unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB file system of its own."""
    where = tmp_path / "small"
    _mount(where, "4m")
    try:
        yield where
    finally:
        _unmount(where)


def fill(where: Path, leave: int) -> None:
    """Fill the file system at `where` until only `leave` bytes are free."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    with open(where / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def submitted_world(db: str, tmp_path: Path) -> Cli:
    """A call with MANY declared applications, ready to be submitted in one advance."""
    cli = Cli(db)
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(MANY)), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(MANY, per_society=1)), now="2025-03-10")
    return cli


def run(db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(db, *args, now="2025-03-20"), capture_output=True, text=True,
                          timeout=300, env={**os.environ})


def assert_one_line_about_the_disk(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: out of disk space") and "nothing was written" in lines[0]


def test_disk_full_during_a_sqlite_advance(new_db, small_disk, tmp_path):
    if backend() != "sqlite":
        pytest.skip("the SQLite case; PostgreSQL's is test_disk_full_during_a_postgres_advance")
    built = submitted_world(new_db("starfund", founded=True), tmp_path)
    db = str(small_disk / "starfund.db")
    with closing(sqlite3.connect(built.db)) as src, closing(sqlite3.connect(db)) as dst:
        src.backup(dst)
    before = fingerprint(db)
    fill(small_disk, 256 * 1024)
    r = run(db, "advance", CALL, "submit")
    assert "database or disk is full" in r.stderr
    assert_one_line_about_the_disk(r)
    (small_disk / "filler").unlink()
    assert fingerprint(db) == before
    r = run(db, "advance", CALL, "submit")   # with room again, the same command completes
    assert r.returncode == 0 and f"moved {MANY}" in r.stdout, r.stdout + r.stderr


@pytest.fixture
def small_tablespace() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL tablespace on a 16 MB file system (the server runs here as `postgres`, and
    must reach the folder: not under the tests' owner-only temporary folder)."""
    if backend() != "postgres":
        pytest.skip("the PostgreSQL case; SQLite's is test_disk_full_during_a_sqlite_advance")
    ids = _postgres_ids()
    where = Path(tempfile.mkdtemp(prefix="starfund-small-pg-"))
    os.chmod(where, 0o755)
    name = f"small_{uuid.uuid4().hex[:12]}"
    admin = dbmod.make_engine(os.environ.get("STARFUND_TEST_PG",
                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    try:
        _mount(where, "16m")   # room for the table as built; the advance's rows will not fit
        os.chown(where, *ids)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"CREATE TABLESPACE {name} LOCATION '{where}'")
        yield name, where
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP TABLESPACE IF EXISTS {name}")
        admin.dispose()
        _unmount(where)
        where.rmdir()


def _postgres_ids() -> tuple[int, int]:
    import pwd

    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("the PostgreSQL server does not run as a local `postgres` user here")
    return user.pw_uid, user.pw_gid


def test_disk_full_during_a_postgres_advance(new_db, small_tablespace, tmp_path):
    name, where = small_tablespace
    cli = submitted_world(new_db("starfund", founded=True), tmp_path)
    e = dbmod.make_engine(cli.db)
    try:
        with e.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE audit_events SET TABLESPACE {name}")
        before = fingerprint(cli.db)
        fill(where, 64 * 1024)
        r = run(cli.db, "advance", CALL, "submit")
        assert "No space left on device" in r.stderr or "DiskFull" in r.stderr, r.stderr
        assert_one_line_about_the_disk(r)
        (where / "filler").unlink()
        assert fingerprint(cli.db) == before
    finally:
        with e.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_events SET TABLESPACE pg_default")
        e.dispose()


def test_a_full_outbox_folder_defers_without_charging_attempts(small_call, small_disk):
    """The outbox folder fills after a few messages: the rest are deferred as they were
    queued (no attempt charged), no temporary file is left, and once there is room again
    every message goes out."""
    cli = small_call
    cli("advance", CALL, "submit", now="2025-03-20")
    outbox = small_disk / "outbox"
    outbox.mkdir()
    e = dbmod.make_engine(cli.db)
    try:
        with e.connect() as conn:
            pending = conn.exec_driver_sql(
                "SELECT count(*) FROM notifications WHERE status = 'pending'").scalar()
        assert pending >= 10
        fill(small_disk, 0)
        for _ in range(3):  # rounds on a full disk never use up an attempt
            r = cli("notify", "send", "--outbox", outbox, now="2025-03-21")
            assert r.exit_code == 0, r.output
            assert f"0 sent, 0 to retry, 0 failed, 0 in doubt, {pending} deferred" in r.output
            assert "deferred without using an attempt" in r.output
            assert "No space left on device" in r.output
            assert [p.name for p in outbox.iterdir()] == []
            with e.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT status, attempts FROM notifications").all()
            assert {(s, a) for s, a in rows} == {("pending", 0)}, rows
        (small_disk / "filler").unlink()
        r = cli("notify", "send", "--outbox", outbox, now="2025-03-21")
        assert f"{pending} sent, 0 to retry, 0 failed, 0 in doubt, 0 deferred" in r.output
        assert len([p for p in outbox.iterdir() if p.suffix == ".eml"]) == pending
        assert not [p for p in outbox.iterdir() if p.name.endswith(".tmp")]
    finally:
        e.dispose()


def test_no_connection_left_is_one_line(new_db):
    """The server has no connection slot for us (a role limited to none, as a full server
    answers): one line naming database connections, no traceback, exit 1."""
    if backend() != "postgres":
        pytest.skip("SQLite has no connection limit to run out of")
    db = new_db("starfund", founded=True)
    role = f"sf_limited_{uuid.uuid4().hex[:10]}"
    admin = dbmod.make_engine(os.environ.get("STARFUND_TEST_PG",
                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        limited = db.replace("://postgres@", f"://{role}@", 1)
        assert limited != db
        r = subprocess.run([*command(limited, "status", CALL)], capture_output=True, text=True,
                           timeout=120, env={**os.environ})
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert "out of database connections" in line and "too many connections" in line
        assert "nothing was written" in line
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()
