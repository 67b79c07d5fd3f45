"""A call with many declared applications, real `starfund` processes, and a fingerprint.

Shared by the concurrency and fault tests. Seeding goes through the public
surface (the CLI's importers and `advance submit`); processes are the installed
`starfund` command; the fingerprint covers everything an advance writes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import EXAMPLE_CALL, Cli, write_csv
from sqlalchemy import text

from lifecycle.core import db

CALL = "2025-project"
IMPORT_AT = "2025-03-10T10:00"
SUBMIT_AT = "2025-03-20T10:00"
CLOSE_AT = "2025-04-08T09:00"
CATEGORIES = ("academic", "policy", "popsci", "talent", "capacity")
STARFUND = Path(sys.executable).with_name("starfund")


def seed_declared(cli: Cli, tmp_path: Path, n: int) -> None:
    """The example call with `n` applications declared (one per society and category)."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    societies = (n + len(CATEGORIES) - 1) // len(CATEGORIES)
    cli("society", "import", write_csv(tmp_path / "soc.csv", [
        {"id": f"S{i:05d}", "name": f"并发测试{i}学会", "name_en": f"Society {i}",
         "email": f"s{i}@example.org", "institution": f"Inst{i % 7}",
         "annual_inspection_passed": "yes" if i % 11 else "no", "penalty": "no"}
        for i in range(societies)]), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", [
        {"id": f"A{i:06d}", "society_id": f"S{i // len(CATEGORIES):05d}",
         "category": CATEGORIES[i % len(CATEGORIES)], "title": f"项目 {i}",
         "requested_amount": 20000, "summary": "摘要"} for i in range(n)]), now=IMPORT_AT)
    cli("advance", CALL, "submit", now=SUBMIT_AT)


def command(db_url: str, *args: str, now: str = CLOSE_AT, actor: str = "admin-proc") -> list[str]:
    exe = [str(STARFUND)] if STARFUND.exists() else [sys.executable, "-c",
                                                      "from cli import main; main()"]
    return exe + ["--db", db_url, "--as", actor, "--now", now, *args]


def start(db_url: str, *args: str, **kw: Any) -> subprocess.Popen:
    """A real `starfund` process (its own interpreter, connection and transaction)."""
    return subprocess.Popen(command(db_url, *args, **kw), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def fingerprint(db_url: str) -> str:
    """A digest of every row an advance may write: states, audit chain, outbox, deadlines."""
    e = db.make_engine(db_url)
    h = hashlib.sha256()
    try:
        with e.connect() as conn:
            for sql in ("SELECT id, state, version, updated_at, score, rank, recommended, "
                        "granted_amount, decision_reason FROM applications ORDER BY id",
                        "SELECT seq, hash FROM audit_events ORDER BY seq",
                        "SELECT seq, hash FROM audit_head",
                        "SELECT dedupe_key, status, attempts FROM notifications "
                        "ORDER BY dedupe_key",
                        "SELECT key, due_at, fired_at FROM deadlines ORDER BY key"):
                for row in conn.execute(text(sql)):
                    h.update(repr(tuple(row)).encode())
                h.update(b"|")
    finally:
        e.dispose()
    return h.hexdigest()


def moves_per_application(db_url: str, action: str) -> dict[str, int]:
    """How many audit events of `action` each application has (a move is one event)."""
    e = db.make_engine(db_url)
    try:
        with e.connect() as conn:
            return dict(conn.execute(text(
                "SELECT application_id, count(*) FROM audit_events WHERE action = :a "
                "GROUP BY application_id"), {"a": action}).all())
    finally:
        e.dispose()


def states(db_url: str) -> dict[str, int]:
    e = db.make_engine(db_url)
    try:
        with e.connect() as conn:
            return dict(conn.execute(text(
                "SELECT state, count(*) FROM applications GROUP BY state")).all())
    finally:
        e.dispose()


def wait_for_quiet_postgres(db_url: str, timeout: float = 30) -> None:
    """After a client is killed, wait (bounded) until its server backend has gone away,
    so the next check never races the rollback of the dead transaction."""
    if "://" not in db_url:
        return
    e = db.make_engine(db_url)
    name = db_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout
    try:
        while True:
            with e.connect() as conn:
                others = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                    "AND state IS DISTINCT FROM 'idle'"), {"d": name}).scalar()
            if not others:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{others} server process(es) still on {name} "
                                     f"{timeout} s after the client died")
            time.sleep(0.05)
    finally:
        e.dispose()


class BatchProbe:
    """Tells, without waiting, whether another process is inside an advance's transaction.

    SQLite: another connection holds the write lock (our BEGIN IMMEDIATE fails at once).
    PostgreSQL: another backend holds the call row lock of `advance` (RowShareLock on calls).
    """

    def __init__(self, db_url: str) -> None:
        self.url = db_url
        if "://" not in db_url:
            import sqlite3

            self._sqlite = sqlite3.connect(db_url, timeout=0, isolation_level=None)
            self._engine = None
        else:
            self._sqlite = None
            self._engine = db.make_engine(db_url)

    def busy(self) -> bool:
        if self._sqlite is not None:
            import sqlite3

            try:
                self._sqlite.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if "locked" in str(e) or "busy" in str(e):
                    return True
                raise
            self._sqlite.execute("ROLLBACK")
            return False
        with self._engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'calls' AND l.mode = 'RowShareLock' AND l.granted "
                "AND l.pid <> pg_backend_pid()")).scalar())

    def wait_busy(self, proc: subprocess.Popen, timeout: float = 60) -> float:
        """Wait (bounded) until `proc` is inside its batch; returns when it was seen there."""
        deadline = time.monotonic() + timeout
        while not self.busy():
            if proc.poll() is not None:
                raise AssertionError(f"the process ended (exit {proc.returncode}) before its "
                                     "batch was seen running")
            if time.monotonic() > deadline:
                raise AssertionError(f"no batch running after {timeout} s")
            time.sleep(0.002)
        return time.monotonic()

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._engine is not None:
            self._engine.dispose()
