"""Real `starfund` processes for the tests of concurrency, faults and the scheduler: each has its
own interpreter, connection and transaction. Waiting on them is bounded polling, never a sleep
that hopes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from lifecycle.core import db

STARFUND = Path(sys.executable).with_name("starfund")


def starfund() -> list[str]:
    """The installed `starfund` command (or the same through this interpreter)."""
    return [str(STARFUND)] if STARFUND.exists() else [sys.executable, "-c",
                                                       "from cli import main; main()"]


def command(db_url: str, *args: str, now: str = "2025-04-08T09:00",
            actor: str = "admin-test") -> list[str]:
    return starfund() + ["--db", db_url, "--as", actor, "--now", now, *args]


def start(db_url: str, *args: str, **kw: Any) -> subprocess.Popen:
    """`starfund --db DB --as ACTOR --now NOW ARGS` as a process of its own."""
    return subprocess.Popen(command(db_url, *args, **kw), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def spawn(db: str, log: Path, *extra: str, **env_extra: str) -> subprocess.Popen:
    """`starfund scheduler run` on the wall clock (unless STARFUND_NOW is given in env_extra)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("STARFUND_NOW", "STARFUND_FAULT_PAUSE_IN", "STARFUND_FAULT_MARKER")}
    env.update(env_extra)
    return subprocess.Popen([*starfund(), "--db", db, "scheduler", "run", "--sync-every", "1",
                             "--drain-every", "0.5", *extra],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env)


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

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._engine is not None:
            self._engine.dispose()
