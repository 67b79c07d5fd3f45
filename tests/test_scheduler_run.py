"""`starfund scheduler run` as real processes: near deadlines fire on time, SIGTERM stops it cleanly.

These tests use the wall clock (STARFUND_NOW unset) with deadlines a few
seconds ahead, and wait for the processes with bounded polling.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from processes import spawn
from smtp_server import Inbox, free_port, serve
from sqlalchemy import func, select, text, update
from worlds import (
    Cli,
    advance,
    audit_rows,
    call_closing,
    drafts,
    overdue_call,
    people,
    states,
)

from lifecycle.core import clock
from lifecycle.core.db import make_engine
from lifecycle.core.models import Call, Deadline, Notification


def wait_for(what, timeout: float = 45.0, procs: list[subprocess.Popen] = ()) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return
        for p in procs:
            assert p.poll() is None, f"scheduler exited early with {p.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what.__doc__}")


def stop(procs: list[subprocess.Popen]) -> list[int]:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    return [p.wait(30) for p in procs]


def counts(db: str) -> tuple[int, int]:
    e = make_engine(db)
    try:
        with e.connect() as conn:
            unfired = conn.execute(select(func.count()).select_from(Deadline).where(
                Deadline.fired_at.is_(None), Deadline.action == "advance")).scalar()
            undelivered = conn.execute(select(func.count()).select_from(Notification).where(
                Notification.status != "sent")).scalar()
            return unfired, undelivered
    finally:
        e.dispose()


def near_call(cli: Cli, tmp_path: Path, call_id: str, seconds: int, n: int = 5,
              submit: int | None = None):
    now = clock.now()
    closes = now + timedelta(seconds=seconds)
    call_closing(cli.db, call_id, closes, opens=now - timedelta(days=1))
    drafts(cli, tmp_path, call_id, n)
    only = [x for i in range(1, (submit or n) + 1) for x in ("--only", f"{call_id}-A{i:03d}")]
    advance(cli, "submit", now.isoformat(), *only, call=call_id)
    return closes


def test_scheduler_run_fires_two_near_deadlines_and_stops_on_sigterm(cli, tmp_path):
    people(cli, tmp_path, 10, 8)
    closes1 = near_call(cli, tmp_path, "near1", 8, submit=4)    # one draft will lapse
    log, mail = tmp_path / "scheduler.log", tmp_path / "mail"
    anchors = tmp_path / "anchors"
    proc = spawn(cli.db, log, "--outbox", str(mail), "--anchor-dir", str(anchors))
    try:
        def running():
            """the scheduler to start and anchor the trail"""
            return "scheduler running" in log.read_text() and "anchored event" in log.read_text()
        wait_for(running, procs=[proc])
        closes2 = near_call(cli, tmp_path, "near2", 3)          # added while it runs

        def fired():
            """both deadlines fired and the mail delivered"""
            return counts(cli.db) == (0, 0)
        wait_for(fired, procs=[proc])
    finally:
        codes = stop([proc])
    assert codes == [0]
    out = log.read_text()
    assert "received SIGTERM: shutting down" in out and "scheduler stopped cleanly" in out
    assert "Traceback" not in out
    assert "fired near1:declaration_closes" in out and "fired near2:declaration_closes" in out
    assert states(cli, "near1") == {"eligible": 4, "lapsed": 1}
    assert states(cli, "near2") == {"eligible": 5}
    e = make_engine(cli.db)
    with e.connect() as conn:
        rows = {d.key: d for d in conn.execute(select(Deadline.__table__).where(
            Deadline.action == "advance"))}
        jobs = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
    e.dispose()
    assert rows["near1:declaration_closes"].fired_at >= closes1     # not a moment early
    assert rows["near2:declaration_closes"].fired_at >= closes2
    assert all(d.attempts == 1 for d in rows.values()) and jobs == []
    fired = [json.loads(x.payload)["deadline"] for x in audit_rows(cli.db, action="deadline_fired")]
    assert fired.count("near1:declaration_closes") == fired.count("near2:declaration_closes") == 1
    assert {x.actor for x in audit_rows(cli.db, action="close_declaration")} == {"scheduler"}
    assert len(list(mail.glob("formal_check_passed_*.eml"))) == 9
    assert len(list(mail.glob("remind_declaration_*.eml"))) == 1   # near1's last draft
    assert len(list(anchors.glob("anchor-*.json"))) == 1            # at start; the next in a day
    assert cli("audit", "verify", "--anchors", anchors).exit_code == 0


def test_three_workers_fire_every_deadline_and_deliver_every_message_once(founded_pg_url, tmp_path):
    pg_url = founded_pg_url
    cli = Cli(pg_url)
    people(cli, tmp_path, 10, 8)
    calls = [f"w{i}" for i in range(6)]
    for i, call_id in enumerate(calls):
        near_call(cli, tmp_path, call_id, 5 + i % 3)
    inbox, port = Inbox(), free_port()
    server = serve(inbox, port)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [spawn(pg_url, log, "--channel", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port",
                   str(port)) for log in logs]
    try:
        def done():
            """every deadline fired and every message delivered"""
            return counts(pg_url) == (0, 0)
        wait_for(done, timeout=60, procs=procs)
    finally:
        codes = stop(procs)
        server.stop()
    assert codes == [0, 0, 0]
    for log in logs:
        assert "scheduler stopped cleanly" in log.read_text()
        assert "Traceback" not in log.read_text()
    marks = [json.loads(x.payload)["deadline"] for x in audit_rows(pg_url)
             if x.action in ("deadline_fired", "reminder_skipped")]
    e = make_engine(pg_url)
    with e.connect() as conn:
        keys = conn.execute(select(Deadline.key)).scalars().all()
        n_messages = conn.execute(select(func.count()).select_from(Notification)).scalar()
    e.dispose()
    assert sorted(marks) == sorted(keys)                         # each exactly once
    moved = [x.application_id for x in audit_rows(pg_url, action="close_declaration")]
    assert len(moved) == len(set(moved)) == 30
    assert n_messages == 60                                      # received + formal check passed
    ids = [m["Message-ID"] for _, m in inbox.messages]
    assert len(ids) == len(set(ids)) == n_messages               # delivered once each
    sent = [json.loads(x.payload)["notification"] for x in audit_rows(pg_url)
            if x.action == "notification_sent"]
    assert len(sent) == len(set(sent)) == n_messages


def test_scheduler_run_backoff_is_the_first_retry_delay_of_firings_and_deliveries(cli, tmp_path):
    """--backoff used to be accepted and ignored: the runner always waited 60 s."""
    people(cli, tmp_path, 3, 2)
    now = overdue_call(cli, tmp_path, "bad", 2)                # 2 messages queued
    e = make_engine(cli.db)
    with e.begin() as conn:                                # the call no longer validates: firing fails
        good = conn.execute(select(Call.config).where(Call.id == "bad")).scalar()
        conn.execute(update(Call).where(Call.id == "bad").values(config={**good,
                                                                         "budget_total": -1}))
    closed = str(free_port())                              # nothing listens: delivery fails
    log = tmp_path / "scheduler.log"
    at = now.isoformat()
    proc = spawn(cli.db, log, "--channel", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port",
                 closed, "--backoff", "7", STARFUND_NOW=at)       # time stands still at `at`

    def rows():
        with e.connect() as conn:
            d = conn.execute(select(Deadline.__table__).where(
                Deadline.key == "bad:declaration_closes")).one()
            n = conn.execute(select(Notification.__table__).order_by(Notification.id)).all()
        return d, n
    try:
        def tried():
            """the firing and both deliveries to have failed once"""
            d, n = rows()
            return d.attempts == 1 and len(n) == 2 and all(
                m.attempts == 1 and m.status == "pending" for m in n)
        wait_for(tried, timeout=30, procs=[proc])
    finally:
        codes = stop([proc])
    assert codes == [0]
    d, n = rows()
    e.dispose()
    retry_at = now + timedelta(seconds=7)
    assert d.fired_at is None and "budget_total" in d.last_error
    assert d.next_attempt_at == retry_at                    # was now + 60 s
    assert [m.next_attempt_at for m in n] == [retry_at, retry_at]
    assert all("Connection" in m.last_error for m in n)
    assert "Traceback" not in log.read_text()
