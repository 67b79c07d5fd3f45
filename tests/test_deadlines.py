"""Deadlines fire exactly once, in due order, through `deadlines run-due` time travel and the runner."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text, update
from worlds import (
    Cli,
    advance,
    audit_rows,
    call_closing,
    db_rows,
    deadlines,
    drafts,
    people,
    run_due,
    score_assigned,
    states,
)

from lifecycle.core import clock
from lifecycle.core.db import make_engine
from lifecycle.core.models import Application, Call, Deadline

# --- a whole call ----------------------------------------------------------------------

def test_a_whole_calls_deadlines_fire_in_order_once_each(small_call, tmp_path):
    cli = small_call
    only = [x for i in range(1, 19) for x in ("--only", f"A{i:04d}")]
    r = advance(cli, "submit", "2025-03-20", *only)
    assert r["moved"] == 18
    keys = deadlines(cli)
    assert set(keys) == {"2025-project:declaration_closes",
                         "2025-project:declaration_closes:remind:7d",
                         "2025-project:declaration_closes:remind:3d",
                         "2025-project:declaration_closes:remind:1d"}
    assert keys["2025-project:declaration_closes:remind:7d"]["due_at"] == "2025-03-31 17:00:00"

    assert run_due(cli, "2025-03-30") == []                      # nothing due yet
    (f,) = run_due(cli, "2025-04-01")
    assert (f["kind"], f["outcome"], f["reminders"]) == (
        "declaration_closes:remind:7d", "fired", 2)              # A0019, A0020 are drafts

    fired = run_due(cli, "2025-04-06T18:00")
    assert [(f["kind"], f["outcome"], f["reminders"]) for f in fired] == [
        ("declaration_closes:remind:3d", "skipped", 0),          # the 1-day one is due too
        ("declaration_closes:remind:1d", "fired", 2)]
    assert "superseded" in fired[0]["note"]
    (f,) = run_due(cli, "2025-04-07T17:00")
    assert f["kind"] == "declaration_closes" and f["note"].startswith("moved 20")
    assert states(cli) == {"eligible": 18, "lapsed": 2}
    assert run_due(cli, "2025-04-07T17:00") == []                # fired once, never again

    cli("review", "assign", "2025-project", "--per-application", "3", now="2025-04-08")
    assert advance(cli, "start_review", "2025-04-08")["moved"] == 18
    assert score_assigned(cli.db) > 0
    fired = run_due(cli, "2025-05-06T17:00")
    assert [f["kind"] for f in fired] == ["reviews_due:remind:3d", "reviews_due:remind:1d",
                                          "reviews_due"]
    assert fired[-1]["outcome"] == "fired" and states(cli) == {"reviewed": 18, "lapsed": 2}

    advance(cli, "rank", "2025-05-08")
    advance(cli, "propose", "2025-05-10")
    advance(cli, "open_notice", "2025-05-10")
    notice = [d for d in deadlines(cli).values() if d["kind"].startswith("notice_ends")
              and d["action"] == "advance"]
    assert len(notice) == 1 and not notice[0]["fired_at"]
    assert [f["kind"] for f in run_due(cli, notice[0]["due_at"])] == [notice[0]["kind"]]
    awarded = states(cli).get("awarded", 0)
    assert awarded > 0
    advance(cli, "fund", "2025-05-20")
    advance(cli, "open_assessment", "2025-10-01")
    reports = sorted((d for d in deadlines(cli).values() if d["fires"] == "assess"),
                     key=lambda d: d["due_at"])
    assert len(reports) == 1, reports                             # the next checkpoint's report
    report_due = datetime.fromisoformat(reports[0]["due_at"])
    fired = run_due(cli, (report_due - timedelta(days=13)).isoformat())
    assert [(f["kind"].split(":")[-1], f["outcome"], f["reminders"]) for f in fired] == [
        ("14d", "fired", awarded)]                                # every funded society
    fired = run_due(cli, report_due.isoformat())
    assert [f["kind"].split(":")[-1] for f in fired] == ["3d", reports[0]["kind"].split(":")[-1]]
    assert fired[-1]["outcome"] == "fired"
    assert "no assessment grade recorded" in fired[-1]["note"]    # nobody graded: nothing moves

    # every deadline fired exactly once, and the audit trail says so in due order
    rows = deadlines(cli)
    assert all(d["fired_at"] and d["attempts"] == 1 for d in rows.values())
    events = audit_rows(cli.db, actor="scheduler")
    marks = [json.loads(e.payload)["deadline"] for e in events
             if e.action in ("deadline_fired", "reminder_skipped")]
    assert sorted(marks) == sorted(rows) and len(marks) == len(set(marks))
    due_order = sorted(rows, key=lambda k: (rows[k]["due_at"], k))
    assert marks == due_order
    moves = [e.action for e in events if e.to_state]
    assert moves.count("close_declaration") == 20 and moves.count("close_review") == 18
    assert cli("audit", "verify").exit_code == 0


def test_nothing_to_move_counts_as_fired_with_a_note(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20")
    advance(cli, "close_declaration", "2025-04-07T17:00")      # the administrator was first
    fired = run_due(cli, "2025-04-07T18:00")
    main = fired[-1]
    assert main["kind"] == "declaration_closes" and main["outcome"] == "fired"
    assert main["note"].startswith("nothing to move")
    assert deadlines(cli)["2025-project:declaration_closes"]["fired_at"] == "2025-04-07 18:00:00"
    out = cli("deadlines", "list", "2025-project", "--pending").output
    assert "declaration_closes" not in out


def test_a_failing_deadline_is_retried_and_reported_never_marked_fired(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20")
    e = make_engine(cli.db)
    with e.begin() as conn:
        good = conn.execute(select(Call.config).where(Call.id == "2025-project")).scalar()
        broken = {**good, "budget_total": -1}                  # the call no longer validates
        conn.execute(update(Call).where(Call.id == "2025-project").values(config=broken))
    r = cli("deadlines", "run-due", now="2025-04-07T17:00", ok=False)
    assert r.exit_code == 1
    assert "failed 2025-project:declaration_closes" in r.output and "budget_total" in r.output
    d = deadlines(cli)["2025-project:declaration_closes"]
    assert d["fired_at"] is None and d["attempts"] == 1 and "budget_total" in d["last_error"]
    assert d["retry_at"] == "2025-04-07 17:01:00"
    assert db_rows(cli.db, select(Application.state).distinct()) == [("declared",)]  # rolled back
    assert run_due(cli, "2025-04-07T17:00:30") == []           # backing off
    (f,) = run_due(cli, "2025-04-07T17:01", ok=False)
    assert f["outcome"] == "failed" and f["attempts"] == 2 and f["retry_at"] == "2025-04-07 17:03:00"
    d = deadlines(cli)["2025-project:declaration_closes"]
    assert (d["attempts"], d["retry_at"], d["fired_at"]) == (2, "2025-04-07 17:03:00", None)

    with e.begin() as conn:                                     # the administrator fixes it
        conn.execute(update(Call).where(Call.id == "2025-project").values(config=good))
    e.dispose()
    (f,) = run_due(cli, "2025-04-07T17:05")
    assert f["outcome"] == "fired" and f["attempts"] == 3
    assert states(cli) == {"eligible": 20}
    fired = [x for x in audit_rows(cli.db, action="deadline_fired")
             if json.loads(x.payload)["deadline"] == "2025-project:declaration_closes"]
    assert len(fired) == 1


# --- catch-up by the runner ------------------------------------------------------------

def _three_calls(cli: Cli, tmp_path: Path) -> list[str]:
    people(cli, tmp_path, 10, 8)
    ids = []
    for n, day in enumerate((10, 12, 14), start=1):
        call_id = f"c{n}"
        call_closing(cli.db, call_id, datetime(2025, 4, day, 17), reminders={
            "declaration_closes": []})
        drafts(cli, tmp_path, call_id, 5, now="2025-03-20")
        advance(cli, "submit", "2025-03-21", call=call_id)
        ids.append(call_id)
    return ids


def test_a_scheduler_stopped_across_three_deadlines_catches_up_once_each(cli, tmp_path):
    from lifecycle.scheduling.runner import Runner
    from notifications.channels import FileChannel

    ids = _three_calls(cli, tmp_path)
    call_closing(cli.db, "later", datetime(2025, 6, 1, 17), reminders={"declaration_closes": []})
    drafts(cli, tmp_path, "later", 2, now="2025-03-20")
    e = make_engine(cli.db)
    outbox = tmp_path / "mail"

    clock.set_now(datetime(2025, 4, 15, 9))                      # all three have passed
    runner = Runner(e, lambda: FileChannel(outbox), sync_every=3600, drain_every=3600)
    runner.start()
    try:
        assert [(f.call_id, f.outcome) for f in runner.fired] == [(c, "fired") for c in ids]
        with e.connect() as conn:                               # one wake-up per future deadline
            jobs = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
        assert jobs == ["deadline:later:declaration_closes"]
    finally:
        runner.stop()
    assert all(states(cli, c) == {"eligible": 5} for c in ids)
    assert len(list(outbox.glob("formal_check_passed_*.eml"))) == 15   # drained at start

    with e.begin() as conn:                                     # jobs are rebuilt from rows
        conn.execute(text("DELETE FROM apscheduler_jobs"))
    clock.set_now(datetime(2025, 4, 16, 9))
    runner = Runner(e, lambda: FileChannel(outbox), sync_every=3600, drain_every=3600)
    runner.start()
    try:
        assert runner.fired == []                               # nothing fires twice
        with e.connect() as conn:
            jobs = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
        assert jobs == ["deadline:later:declaration_closes"]
    finally:
        runner.stop()
    e.dispose()
    fired = [json.loads(x.payload)["deadline"] for x in audit_rows(cli.db, action="deadline_fired")]
    assert fired == [f"{c}:declaration_closes" for c in ids]


# --- two schedulers at once (PostgreSQL: row locks, SKIP LOCKED; SQLite: the write lock) ---

def test_two_schedulers_at_once_fire_each_deadline_once(founded_db_url, tmp_path):
    from lifecycle.scheduling import firing

    pg_url = founded_db_url
    cli = Cli(pg_url)
    people(cli, tmp_path, 4, 8)
    ids = []
    for n in range(12):
        call_id = f"p{n:02d}"
        call_closing(pg_url, call_id, datetime(2025, 4, 1, 9) + timedelta(hours=n),
                  reminders={"declaration_closes": [2, 1]})
        drafts(cli, tmp_path, call_id, 4, now="2025-03-20")
        advance(cli, "submit", "2025-03-21", call=call_id)
        ids.append(call_id)
    with make_engine(pg_url).connect() as conn:
        total = conn.execute(select(func.count()).select_from(Deadline)).scalar()
    assert total == 36
    results: list[list[firing.Firing]] = [[], []]
    start = threading.Barrier(2)

    def worker(i: int) -> None:
        e = make_engine(pg_url)
        start.wait()
        results[i] = firing.run_due(e, datetime(2025, 4, 2, 9))
        e.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    keys = [f.key for r in results for f in r]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 36
    assert all(f.outcome in ("fired", "skipped") for r in results for f in r)
    if "://" in pg_url:                                          # SKIP LOCKED: no waiting
        assert results[0] and results[1], "both workers took a share"
    marks = [json.loads(x.payload)["deadline"] for x in audit_rows(pg_url)
             if x.action in ("deadline_fired", "reminder_skipped")]
    assert sorted(marks) == sorted(keys)
    moved = [x.application_id for x in audit_rows(pg_url, action="close_declaration")]
    assert len(moved) == len(set(moved)) == 48
