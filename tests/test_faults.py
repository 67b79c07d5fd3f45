"""A batch moves whole or not at all, whatever goes wrong in the middle of it.

- `starfund advance` killed with SIGKILL at random points of a 20,000-application
  batch (a seeded random delay after its transaction is seen to begin), ten
  times: the call is exactly as before each time, the audit chain verifies, and
  the next advance completes. Runs on the backend under test
  (CI runs the suite on SQLite and on PostgreSQL).
- A condition that raises on one application rolls the whole batch back. The
  failing condition comes from a test-only workflow registered in
  states.workflows.WORKFLOWS: stage data like any other, not a mock of the engine.
"""
from __future__ import annotations

import json
import random
import signal
import time
from types import SimpleNamespace

import pytest
from batch_world import (
    CALL,
    CLOSE_AT,
    IMPORT_AT,
    SUBMIT_AT,
    BatchProbe,
    fingerprint,
    finish,
    moves_per_application,
    seed_declared,
    start,
    wait_for_quiet_postgres,
)
from conftest import EXAMPLE_CALL, Cli, applications, societies, write_csv

from lifecycle import callconfig, calls, clock, db, engine
from states import declaration
from states.spec import Move
from states.workflows import PROJECT, WORKFLOWS, Workflow

N = 20_000
KILLS = 10


def test_sigkill_at_random_points_of_a_batch_leaves_the_call_as_before(db_url, tmp_path):
    cli = Cli(db_url)
    cli("init")
    seed_declared(cli, tmp_path, N)
    before = fingerprint(db_url)
    probe = BatchProbe(db_url)
    try:
        # How long the batch's transaction lasts: a dry run does the same loads,
        # decisions and writes, then rolls back.
        proc = start(db_url, "advance", CALL, "close_declaration", "--dry-run")
        began = probe.wait_busy(proc)
        code, _, err = finish(proc)
        assert code == 0, err
        span = time.monotonic() - began
        assert fingerprint(db_url) == before
        rng = random.Random(20251125)
        for attempt in range(KILLS):
            proc = start(db_url, "advance", CALL, "close_declaration")
            began = probe.wait_busy(proc)
            at = rng.uniform(0.0, 0.8) * span
            while time.monotonic() - began < at:
                time.sleep(0.002)
            assert proc.poll() is None and probe.busy(), \
                f"kill {attempt + 1}: the batch ended within {at:.2f} s, before the kill"
            proc.send_signal(signal.SIGKILL)
            code, _, _ = finish(proc, timeout=30)
            assert code == -signal.SIGKILL
            wait_for_quiet_postgres(db_url)
            assert fingerprint(db_url) == before, \
                f"kill {attempt + 1}, {at:.2f} s into the batch, changed the call"
            assert "audit chain intact" in cli("audit", "verify").output
    finally:
        probe.close()
    code, out, err = finish(start(db_url, "advance", CALL, "close_declaration", "--json"))
    assert code == 0, err
    assert json.loads(out)["moved"] == N
    moves = moves_per_application(db_url, "close_declaration")
    assert len(moves) == N and set(moves.values()) == {1}
    assert "audit chain intact" in cli("audit", "verify").output


# --- a condition that fails on one application -------------------------------------------

BOOM_ID = "A0007"


def explodes_on_one_application(app, ctx) -> str | None:
    """A condition with a bug that only one application's data triggers."""
    if app.id == BOOM_ID:
        raise RuntimeError(f"condition crashed on {app.id}")
    return None


BOOM_STAGE = SimpleNamespace(STATES=(), MOVES=(
    Move("close_declaration", ("declared",), "eligible",
         (declaration.declaration_window_closed, explodes_on_one_application)),))


def test_a_condition_raising_on_one_application_rolls_back_the_whole_batch(
        db_url, tmp_path, monkeypatch):
    boom = Workflow(name="project-boom", title="project funding, with a broken condition",
                    initial=PROJECT.initial, stages=(BOOM_STAGE, *PROJECT.stages))
    monkeypatch.setitem(WORKFLOWS, boom.name, boom)
    cli = Cli(db_url)
    cli("init")
    e = db.make_engine(db_url)
    config = callconfig.load(EXAMPLE_CALL).model_copy(update={"workflow": boom.name})
    with clock.frozen("2025-02-01"), db.transaction(e) as s:
        calls.create(s.connection(), config, "admin-test")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", applications(20)),
        now=IMPORT_AT)
    cli("advance", CALL, "submit", now=SUBMIT_AT)
    before = fingerprint(db_url)
    with clock.frozen(CLOSE_AT), pytest.raises(RuntimeError, match="crashed on A0007"):
        engine.advance(e, CALL, "close_declaration", "admin-test")
    assert fingerprint(db_url) == before
    # the applications before A0007 in the batch were decided, yet none of them moved
    assert moves_per_application(db_url, "close_declaration") == {}
    # without the broken application the same batch goes through
    others = [f"A{i:04d}" for i in range(1, 21) if f"A{i:04d}" != BOOM_ID]
    with clock.frozen(CLOSE_AT):
        report = engine.advance(e, CALL, "close_declaration", "admin-test", only=others)
    assert report.moved_total == 19
    e.dispose()
