"""Reminders: configurable offsets, only to those with something left to do, skipped when too late."""
from __future__ import annotations

import json

from sqlalchemy import select
from worlds import (
    advance,
    applications,
    audit_rows,
    call_file,
    db_rows,
    deadlines,
    fingerprint,
    run_due,
    score_assigned,
    societies,
    write_csv,
)

from lifecycle.core.models import Notification


def reminders(db: str, kind: str) -> list:
    return db_rows(db, select(Notification.recipient_id, Notification.application_id,
                              Notification.context, Notification.dedupe_key)
                   .where(Notification.kind == kind).order_by(Notification.id))


def test_declaration_reminders_go_only_to_societies_with_drafts(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20", "--only", "A0001", "--only", "A0007")
    advance(cli, "withdraw", "2025-03-20", "--only", "A0002")
    (f,) = run_due(cli, "2025-04-01")
    assert f["reminders"] == 17
    sent = reminders(cli.db, "remind_declaration")
    assert {a for _, a, _, _ in sent} == {f"A{i:04d}" for i in range(1, 21)} - {
        "A0001", "A0002", "A0007"}
    ctx = next(c for _, a, c, _ in sent if a == "A0003")
    assert ctx["deadline"] == {"kind": "declaration_closes", "due_at": "2025-04-07 17:00",
                               "days_left": 6, "hours_left": 161}
    assert ctx["society"]["id"] == "S001" and ctx["application"]["title"] == "项目 3"
    advance(cli, "submit", "2025-04-02")                          # the rest submit
    (f,) = run_due(cli, "2025-04-05")
    assert f["outcome"] == "fired" and f["reminders"] == 0 and "nobody to remind" in f["note"]
    assert len(reminders(cli.db, "remind_declaration")) == 17


def test_review_reminders_go_only_to_experts_with_missing_scores(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20")
    run_due(cli, "2025-04-07T17:00")
    cli("review", "assign", "2025-project", "--per-application", "3", now="2025-04-08")
    advance(cli, "start_review", "2025-04-08")
    e1 = [a for e, a in db_rows(cli.db, select(Notification.recipient_id, Notification.application_id)
                                .where(Notification.kind == "review_assigned"))
          if e == "E001"]
    assert e1
    score_assigned(cli.db, skip={("E001", a) for a in e1})
    (f,) = run_due(cli, "2025-05-04")
    assert f["kind"] == "reviews_due:remind:3d" and f["reminders"] == 1
    ((expert, app, ctx, key),) = reminders(cli.db, "remind_review")
    assert expert == "E001" and key == "remind_review:2025-project:E001:3d"
    assert sorted(a["id"] for a in ctx["applications"]) == sorted(e1) and ctx["missing"] == len(e1)


def test_missed_reminders_are_skipped_with_an_audit_note(small_call):
    cli = small_call
    fired = run_due(cli, "2025-04-07T18:00")                     # the scheduler was down
    assert [(f["kind"], f["outcome"]) for f in fired] == [
        ("declaration_closes:remind:7d", "skipped"), ("declaration_closes:remind:3d", "skipped"),
        ("declaration_closes:remind:1d", "skipped"), ("declaration_closes", "fired")]
    assert reminders(cli.db, "remind_declaration") == []
    notes = [json.loads(e.payload)["note"] for e in audit_rows(cli.db, action="reminder_skipped")]
    assert len(notes) == 3 and all(n.startswith("too late: declaration_closes was due") for n in notes)


def test_offsets_come_from_the_call(cli, tmp_path):
    custom = call_file(tmp_path, {"reminders": {"declaration_closes": [2, 0.5],
                                                "reviews_due": []}})
    cli("call", "create", custom, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "s.csv", societies(2)), now="2025-02-01")
    cli("application", "import", "2025-project", write_csv(tmp_path / "a.csv", applications(3)),
        now="2025-03-10")
    assert {d["kind"]: d["due_at"] for d in deadlines(cli).values()} == {
        "declaration_closes:remind:2d": "2025-04-05 17:00:00",
        "declaration_closes:remind:12h": "2025-04-07 05:00:00",
        "declaration_closes": "2025-04-07 17:00:00"}


def test_bad_reminder_settings_are_refused_naming_the_field(cli, tmp_path):
    bad = call_file(tmp_path, {"reminders": {"reviews_due": [3, -1]}}, name="bad.toml")
    before = fingerprint(cli.db)
    r = cli("call", "create", bad, ok=False)
    assert r.exit_code == 1
    assert f"{bad}: invalid call configuration" in r.output and "reminders" in r.output
    assert "reviews_due" in r.output and "-1" in r.output
    assert fingerprint(cli.db) == before
