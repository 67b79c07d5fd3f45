"""A batch moves whole or not at all, whatever goes wrong in the middle of it.

- `starfund advance` killed with SIGKILL inside the writes of a batch, at points the
  test chooses: the writer's test hook (STARFUND_FAULT_PAUSE_AFTER_ROWS,
  lifecycle.core.bulk) pauses it after a given number of rows, in the states, the
  audit events or the outbox rows, or after the last row before the commit, and says
  so in a marker file; the test then kills it. The same hook's
  STARFUND_FAULT_CHUNK_ROWS makes the writer's chunks small, so a batch of a few
  hundred applications spans as many chunks in each table as one of 100,000 (the
  writes, their order and the transaction are those of a full-size batch).
  Each time the call is exactly as before, the audit chain verifies, and the
  next advance completes. Runs on the backend under test
  (CI runs the suite on SQLite and on PostgreSQL), on PostgreSQL on each write path
  (COPY and executemany: conftest.write_path).
- A condition that raises on one application rolls the whole batch back. The
  failing condition comes from a test-only workflow registered in
  lifecycle.kinds.KINDS: stage data like any other, not a mock of the engine.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from processes import BatchProbe, command, finish, start, wait_for_quiet_postgres
from worlds import (
    CALL,
    Cli,
    declared_batch,
    fingerprint,
    moves_per_application,
    register_workflow,
    workflow_call,
)

from lifecycle.core import clock, db
from lifecycle.engine import engine
from states import declaration
from states.roles import OFFICER
from states.spec import Move

N = 500
CHUNK = 100     # rows per chunk (STARFUND_FAULT_CHUNK_ROWS): the batch streams in 5 chunks
# Where the writer is killed: (pause once at least this many rows are written, the table
# it is then writing; rows are counted per statement or chunk).
# An advance of N declared applications streams: per chunk of CHUNK applications it writes
# their CHUNK states, then CHUNK audit events, then CHUNK outbox rows, then reads the next
# chunk; close_declaration schedules no deadline. The last point is after the last row,
# just before the commit.
CLOSE_AT = "2025-04-08T09:00"   # when the batches here advance (processes.command's default)
PER_CHUNK = 3 * CHUNK
KILL_POINTS = (
    (1, "applications"),                             # early: the first chunk's states
    (CHUNK + 1, "audit_events"),                     # the first chunk's audit events
    (2 * CHUNK + 1, "notifications"),                # the first chunk's outbox rows
    (2 * PER_CHUNK + 1, "applications"),             # the middle of the batch: chunk 3,
    (2 * PER_CHUNK + CHUNK + 1, "audit_events"),     # chunks written before and after
    (2 * PER_CHUNK + 2 * CHUNK + 1, "notifications"),
    (3 * N, "notifications"),             # late: everything written, not yet committed
)


def start_paused(db_url: str, rows: int, marker: Path) -> subprocess.Popen:
    """`starfund advance` that pauses inside its transaction after `rows` rows written."""
    env = {**os.environ, "STARFUND_FAULT_PAUSE_AFTER_ROWS": str(rows),
           "STARFUND_FAULT_CHUNK_ROWS": str(CHUNK), "STARFUND_FAULT_MARKER": str(marker),
           "STARFUND_FAULT_PAUSE_SECONDS": "120"}
    return subprocess.Popen(command(db_url, "advance", CALL, "close_declaration"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_paused(proc: subprocess.Popen, marker: Path, timeout: float = 120) -> str:
    """Wait (bounded) for the writer to say it is paused inside the write; its line."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the writer ended (exit {proc.returncode}) before pausing:"
                                 f"\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the writer did not pause within {timeout} s")
        time.sleep(0.01)
    return marker.read_text(encoding="utf-8")


def test_sigkill_inside_the_writes_of_a_batch_leaves_the_call_as_before(founded_db_url, tmp_path,
                                                                        write_path):
    db_url = founded_db_url
    cli = Cli(db_url)
    declared_batch(cli, tmp_path, N)
    before = fingerprint(db_url)
    probe = BatchProbe(db_url)
    proc = None
    try:
        for n, (rows, table) in enumerate(KILL_POINTS, start=1):
            marker = tmp_path / f"paused-{n}"
            proc = start_paused(db_url, rows, marker)
            line = wait_paused(proc, marker)
            found = re.search(r"after (\d+) rows, in (\w+) ", line)
            assert found and found[2] == table and int(found[1]) >= rows, line
            assert int(found[1]) < rows + CHUNK, line        # small chunks: many per table
            if rows == 3 * N:
                assert int(found[1]) == rows, line            # the last row, not beyond
            assert proc.poll() is None and probe.busy(), f"kill {n}: not inside the batch"
            proc.send_signal(signal.SIGKILL)
            code, _, _ = finish(proc, timeout=30)
            assert code == -signal.SIGKILL
            wait_for_quiet_postgres(db_url)
            assert fingerprint(db_url) == before, \
                f"kill {n}, after {rows} rows ({table}), changed the call"
            assert "audit chain intact" in cli("audit", "verify").output
    finally:
        probe.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
    code, out, err = finish(start(db_url, "advance", CALL, "close_declaration", "--json"))
    assert code == 0, err
    report = json.loads(out)
    # the batch writes exactly the rows KILL_POINTS assumes: N states, N events, N messages
    assert (report["moved"], report["notifications"], report["deadlines"]) == (N, N, 0)
    moves = moves_per_application(db_url, "close_declaration")
    assert len(moves) == N and set(moves.values()) == {1}
    assert "audit chain intact" in cli("audit", "verify").output


@pytest.mark.parametrize("setting, value", [("STARFUND_FAULT_PAUSE_AFTER_ROWS", "soon"),
                                            ("STARFUND_FAULT_CHUNK_ROWS", "0")])
def test_the_fault_hook_refuses_a_bad_setting(founded_db_url, setting, value):
    proc = subprocess.Popen(command(founded_db_url, "status", CALL), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, setting: value})
    code, _, err = finish(proc, timeout=60)
    assert code != 0 and f"{setting} must be a positive whole number" in err


# --- a condition that fails on one application -------------------------------------------

BOOM_ID = "A0007"


def explodes_on_one_application(app, ctx) -> str | None:
    """A condition with a bug that only one application's data triggers."""
    if app.id == BOOM_ID:
        raise RuntimeError(f"condition crashed on {app.id}")
    return None


BOOM_MOVE = Move("close_declaration", ("declared",), "eligible",
                 (declaration.declaration_window_closed, explodes_on_one_application), who=(OFFICER,))


def test_a_condition_raising_on_one_application_rolls_back_the_whole_batch(
        founded_db_url, tmp_path, monkeypatch):
    db_url = founded_db_url
    register_workflow(monkeypatch, "project-boom", BOOM_MOVE)
    workflow_call(db_url, tmp_path, "project-boom")
    e = db.make_engine(db_url)
    before = fingerprint(db_url)
    with clock.frozen(CLOSE_AT), pytest.raises(RuntimeError, match="crashed on A0007"):
        engine.advance_in_tx(e, CALL, "close_declaration", "admin-test")
    assert fingerprint(db_url) == before
    # the applications before A0007 in the batch were decided, yet none of them moved
    assert moves_per_application(db_url, "close_declaration") == {}
    # without the broken application the same batch goes through
    others = [f"A{i:04d}" for i in range(1, 21) if f"A{i:04d}" != BOOM_ID]
    with clock.frozen(CLOSE_AT):
        report = engine.advance_in_tx(e, CALL, "close_declaration", "admin-test", only=others)
    assert report.moved_total == 19
    e.dispose()
