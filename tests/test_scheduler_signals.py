"""`scheduler run` stops on SIGTERM and SIGINT within seconds in every phase, leaving nothing claimed.

Each runner is a real `starfund scheduler run` process on the wall clock. The
test hook STARFUND_FAULT_PAUSE_IN=<phase> makes it write a marker file and wait
the first time it reaches that phase; the test signals it there:

- sync: the deadline jobs being rebuilt in the job store (where APScheduler's
  shutdown(wait=True) used to wait for ever: it held the job-store lock while
  waiting for the job that needed it);
- fire: a due deadline claimed, its transaction open;
- deliver: a mail batch claimed (committed as `sending`), nothing sent yet;
- idle: no hook; signalled once the runner has done all there was to do.

Each phase has its own database and its runners run beside the other phases'.
Two rounds send SIGTERM, then SIGINT, each to a new runner with new work (a call
whose declaration closed an hour ago, with queued mail); the second round's
runners start on a database with the first round's history. After each signal
the process must exit 0 within STOP_WITHIN seconds with no message left
`sending`; at the end the one-shot commands finish what is left, and every
deadline has fired and every message gone out exactly once. (Both signals run
the one handler, and the hook puts each runner in its phase for certain, so a
second pass over each pair adds time, not strength.)
"""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from processes import spawn
from sqlalchemy import func, select
from worlds import Cli, audit_rows, db_rows, overdue_call, people

from lifecycle.core import clock
from lifecycle.core.models import Deadline, Notification

PHASES = ("idle", "sync", "fire", "deliver")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_WITHIN = 10.0


@pytest.fixture
def phase_dbs(new_db):
    """One initialised database per phase, of the backend under test."""
    return {p: new_db(p, founded=True) for p in PHASES}


def unfinished(db: str) -> tuple[int, int]:
    """(due closing deadlines not fired, messages not sent)."""
    now = clock.now()
    return (db_rows(db, select(func.count()).select_from(Deadline).where(
                Deadline.fired_at.is_(None), Deadline.action == "advance",
                Deadline.due_at <= now))[0][0],
            db_rows(db, select(func.count()).select_from(Notification).where(
                Notification.status != "sent"))[0][0])


def test_a_signal_stops_the_runner_within_seconds_and_leaves_nothing_claimed(phase_dbs, tmp_path):
    clis = {p: Cli(url) for p, url in phase_dbs.items()}
    for cli in clis.values():
        people(cli, tmp_path, 4, 2)
    took: dict[str, list[float]] = {p: [] for p in PHASES}
    for run, sig in enumerate(SIGNALS):
        logs = {p: tmp_path / f"{p}{run}.log" for p in PHASES}
        markers = {p: tmp_path / f"{p}{run}.paused" for p in PHASES}
        procs: dict[str, subprocess.Popen] = {}
        try:
            for p in PHASES:
                overdue_call(clis[p], tmp_path, f"{p}{run}")
                hook = {} if p == "idle" else {"STARFUND_FAULT_PAUSE_IN": p,
                                               "STARFUND_FAULT_MARKER": str(markers[p])}
                procs[p] = spawn(clis[p].db, logs[p], "--outbox", str(tmp_path / f"mail-{p}"),
                                 **hook)

            def ready(p: str, logs=logs, markers=markers) -> bool:
                if p == "idle":   # all there was to do is done: nothing in hand
                    return ("scheduler running" in logs[p].read_text()
                            and unfinished(clis[p].db) == (0, 0))
                return markers[p].exists()

            signalled: dict[str, float] = {}
            ended: dict[str, float] = {}
            give_up = time.monotonic() + 45
            while len(ended) < len(PHASES):
                for p, proc in procs.items():
                    if p in ended:
                        continue
                    if p in signalled:
                        if proc.poll() is not None:
                            ended[p] = time.monotonic()
                        elif time.monotonic() > signalled[p] + STOP_WITHIN:
                            pytest.fail(f"{p} run {run}: still running {STOP_WITHIN} s after "
                                        f"{sig.name}:\n{logs[p].read_text()[-3000:]}")
                        continue
                    assert proc.poll() is None, \
                        f"{p} run {run} exited early ({proc.returncode}):\n{logs[p].read_text()}"
                    if ready(p):
                        proc.send_signal(sig)
                        signalled[p] = time.monotonic()
                assert len(signalled) == len(PHASES) or time.monotonic() < give_up, \
                    f"never ready: {set(PHASES) - set(signalled)}"
                time.sleep(0.05)
            for p, proc in procs.items():
                took[p].append(ended[p] - signalled[p])
                out = logs[p].read_text()
                assert proc.returncode == 0, out
                assert f"received {sig.name}: shutting down" in out, out
                assert "scheduler stopped cleanly" in out and "Traceback" not in out, out
                after = out[out.index(f"received {sig.name}"):]
                if p == "fire":       # the firing in hand was finished and committed, no other
                    assert after.count(" INFO deadline ") == 1, out
                if p == "deliver":    # the batch in hand was sent and recorded, no other claimed
                    assert after.count(" INFO notifications: ") == 1, out
                sending = db_rows(clis[p].db, select(Notification.id).where(
                    Notification.status == "sending"))
                assert sending == [], f"{p} run {run} left messages claimed: {sending}"
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    for p, cli in clis.items():                                # what is left is free: finish it
        mail = tmp_path / f"mail-{p}"
        cli("deadlines", "run-due")
        cli("notify", "send", "--outbox", str(mail))
        assert unfinished(cli.db) == (0, 0), p
        marks = [json.loads(x.payload)["deadline"] for x in audit_rows(cli.db)
                 if x.action in ("deadline_fired", "reminder_skipped")]
        done = db_rows(cli.db, select(Deadline.key).where(Deadline.fired_at.is_not(None)))
        assert sorted(marks) == sorted(k for (k,) in done), p     # each fired deadline once
        assert {f"{p}{run}:declaration_closes" for run in range(len(SIGNALS))} <= set(marks)
        moved = [x.application_id for x in audit_rows(cli.db, action="close_declaration")]
        assert len(moved) == len(set(moved)) == 3 * len(SIGNALS), p
        n_messages = db_rows(cli.db, select(func.count()).select_from(Notification))[0][0]
        assert n_messages == 2 * 3 * len(SIGNALS), p              # received + formal check passed
        sent = [json.loads(x.payload)["notification"]
                for x in audit_rows(cli.db, action="notification_sent")]
        assert len(sent) == len(set(sent)) == n_messages, p       # delivered once each
        assert len(list(mail.glob("*.eml"))) == n_messages, p
    print("stopped within (s): " + "; ".join(
        f"{p} {', '.join(f'{t:.2f}' for t in ts)}" for p, ts in took.items()))
