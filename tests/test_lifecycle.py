"""A whole programme year on a small call, through the CLI and the engine API."""
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from worlds import (
    ADMIN,
    CALL,
    advance,
    applications,
    fingerprint,
    score_assigned,
    societies,
    states,
    write_csv,
)

from lifecycle.core import clock
from lifecycle.core.accounts import Refused, system
from lifecycle.core.db import make_engine
from lifecycle.core.models import Application
from lifecycle.engine import engine
from lifecycle.engine.machine import for_workflow


def test_a_whole_year(small_call, tmp_path):
    cli = small_call
    assert states(cli) == {"draft": 20}
    r = advance(cli, "submit", "2025-03-20")
    assert r["moved"] == 20
    r = advance(cli, "close_declaration", "2025-04-07T17:00:01")
    assert r["moves"] == [{"from": "declared", "to": "eligible", "count": 20}]
    cli("review", "assign", "2025-project", "--per-application", "3", now="2025-04-08")
    assert advance(cli, "start_review", "2025-04-08")["moved"] == 20
    # applications A0001..A0010 are strong, the others weak
    score_assigned(cli.db, lambda app: 0.95 if int(app[1:]) <= 10 else 0.7)
    clock.set_now(None)
    assert advance(cli, "close_review", "2025-05-06T17:00")["moved"] == 20
    assert advance(cli, "rank", "2025-05-08")["moved"] == 20
    r = advance(cli, "propose", "2025-05-10")
    assert {(m["to"], m["count"]) for m in r["moves"]} == {("proposed", 10), ("not_proposed", 10)}
    advance(cli, "open_notice", "2025-05-10")
    early = advance(cli, "close_notice", "2025-05-12")
    assert early["moved"] == 0 and early["skip_reasons"][0]["reason"] == "public notice still running"
    r = advance(cli, "close_notice", "2025-05-18")
    assert {(m["to"], m["count"]) for m in r["moves"]} == {("awarded", 10), ("rejected", 10)}
    advance(cli, "fund", "2025-05-20")
    advance(cli, "open_assessment", "2025-10-01")
    grades = [{"application_id": f"A{i:04d}", "score": g} for i, g in
              zip(range(1, 11), [95, 90, 89.5, 80, 79.9, 70, 69.9, 50, 85, 75])]
    cli("assessment", "grades", "2025-project", write_csv(tmp_path / "grades.csv", grades),
        now="2025-12-10")
    assert advance(cli, "assess", "2025-12-15T17:00")["moved"] == 10
    r = advance(cli, "decide_outcome", "2025-12-20")
    assert {(m["to"], m["count"]) for m in r["moves"]} == {
        ("continued", 5), ("adjusted", 3), ("terminated", 2)}
    advance(cli, "complete", "2025-12-30")
    assert states(cli) == {"rejected": 10, "terminated": 2, "completed": 8}
    show = json.loads(cli("show", "A0006", "--json").output)
    assert show["application"]["assessment_grade"] == "合格"
    assert show["application"]["granted_amount"] == 16000  # 20,000 cut by 20%
    assert [h["action"] for h in show["history"] if h["to_state"]] == [
        "create", "submit", "close_declaration", "start_review", "close_review", "rank",
        "propose", "open_notice", "close_notice", "fund", "open_assessment", "assess",
        "decide_outcome", "complete"]
    assert cli("audit", "verify").exit_code == 0
    out = tmp_path / "mail"
    r = cli("notify", "send", "--outbox", out)
    assert "0 failed" in r.output
    mails = sorted(p.name for p in Path(out).glob("*.eml"))
    assert any(m.startswith("awarded_A0001_") for m in mails)
    body = (out / next(m for m in mails if m.startswith("awarded_A0001_"))).read_bytes()
    assert b"s1@example.org" in body
    # the report request names the checkpoint and the report's due date
    request = message_text(out / next(m for m in mails if m.startswith("report_requested_A0001_")))
    assert "请于 2025-12-15 17:00 前提交" in request and "结题验收" in request


def message_text(path: Path) -> str:
    """The plain-text body of a delivered .eml file, decoded."""
    import email
    from email import policy

    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return msg.get_body(preferencelist=("plain",)).get_content()


def test_skip_reasons_are_grouped_and_dry_run_writes_nothing(small_call, tmp_path):
    cli = small_call
    rows = applications(23)[20:]
    rows[0].update(id="B1", society_id="S009", requested_amount=999999)
    rows[1].update(id="B2", society_id="S009", summary="")
    rows[2].update(id="B3", society_id="S010", category="academic", requested_amount=500000)
    cli("application", "import", "2025-project", write_csv(tmp_path / "more.csv", rows),
        now="2025-03-10")
    before = fingerprint(cli.db)
    r = cli("advance", "2025-project", "submit", "--dry-run", now="2025-03-20")
    assert "would move 20, skipped 3 (dry run: nothing written)" in r.output
    assert "2 skipped: requested amount outside the category cap of 100000" in r.output
    assert "1 skipped: missing required fields: summary" in r.output
    assert fingerprint(cli.db) == before
    r = cli("advance", "2025-project", "submit", now="2025-03-20")
    assert "moved 20, skipped 3" in r.output
    assert states(cli) == {"draft": 3, "declared": 20}


def test_window_closed_submit_is_skipped_with_reason(small_call):
    r = advance(small_call, "submit", "2025-05-01")
    assert r["moved"] == 0
    assert r["skip_reasons"] == [{"reason": "declaration window closed", "count": 20}]


def test_an_advance_that_refuses_every_candidate_exits_3_and_says_why(small_call):
    """Issue 31: `advance CALL submit` after the window closed moved nothing and exited 0."""
    before = fingerprint(small_call.db)
    for extra in ((), ("--dry-run",)):
        text = small_call("advance", CALL, "submit", *extra, now="2025-05-01", ok=False)
        assert text.exit_code == 3, text.output
        assert "0, skipped 20" in text.output
        assert "20 skipped: declaration window closed" in text.output
    as_json = small_call("advance", CALL, "submit", "--json", now="2025-05-01", ok=False)
    assert as_json.exit_code == 3 and json.loads(as_json.output)["skipped"] == 20
    assert fingerprint(small_call.db) == before  # refused: nothing written
    some = small_call("advance", CALL, "submit", "--only", "A0001", now="2025-03-20")
    assert some.exit_code == 0 and "moved 1" in some.output
    none_left = small_call("advance", CALL, "fund", now="2025-03-20", ok=False)
    assert none_left.exit_code == 1  # no candidate at all is a mistake, as before


def test_formal_check_gives_written_reasons(small_call, tmp_path):
    rows = societies(10)
    rows[0]["annual_inspection_passed"] = "否"
    rows[1]["penalty"] = "是"
    small_call("society", "import", write_csv(tmp_path / "soc2.csv", rows), now="2025-03-11")
    advance(small_call, "submit", "2025-03-20")
    r = advance(small_call, "close_declaration", "2025-04-08")
    assert {(m["to"], m["count"]) for m in r["moves"]} == {("eligible", 10), ("ineligible", 10)}
    show = json.loads(small_call("show", "A0001", "--json").output)
    last = show["history"][-1]
    assert last["to_state"] == "ineligible"
    assert last["payload"]["because"] == ["society did not pass the annual inspection (年检)"]
    show = json.loads(small_call("show", "A0006", "--json").output)
    assert show["history"][-1]["payload"]["because"] == ["society is under a penalty"]


def test_drafts_lapse_and_one_per_society_per_category(small_call, tmp_path):
    dup = [{"id": "D1", "society_id": "S001", "category": "academic", "title": "再次申报",
            "requested_amount": 1000, "summary": "x"}]
    small_call("application", "import", "2025-project", write_csv(tmp_path / "d.csv", dup),
               now="2025-03-10")
    r = advance(small_call, "submit", "2025-03-20")
    assert r["skip_reasons"] == [{"reason": "society already declared in this category",
                                  "count": 1}]
    r = advance(small_call, "close_declaration", "2025-04-08")
    assert {"from": "draft", "to": "lapsed", "count": 1} in r["moves"]


def test_review_cannot_close_without_enough_reviews(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20")
    advance(cli, "close_declaration", "2025-04-08")
    cli("review", "assign", "2025-project", "--per-application", "3", now="2025-04-08")
    advance(cli, "start_review", "2025-04-08")
    r = advance(cli, "close_review", "2025-05-07")
    assert r["moved"] == 0
    assert r["skip_reasons"] == [{"reason": "fewer than 3 reviews", "count": 20}]


# --- illegal moves ---------------------------------------------------------------------

def test_unknown_trigger_lists_the_possible_ones(small_call):
    r = small_call("advance", "2025-project", "approve_everything", ok=False, now="2025-03-20")
    assert r.exit_code == 1
    assert "workflow project has no trigger 'approve_everything'" in r.output
    assert "possible now: close_declaration, submit, withdraw" in r.output


def test_every_illegal_trigger_is_refused_from_every_state_reached(small_call):
    """Walk the year; at each step, every trigger not allowed from an application's state is refused."""
    cli = small_call
    wm = for_workflow("project")
    e = make_engine(cli.db)
    steps = [("submit", "2025-03-20", ADMIN), ("close_declaration", "2025-04-08", system())]
    refused_pairs = set()

    def check_all():
        with e.connect() as conn:
            by_state = dict(conn.execute(select(Application.state, Application.id)
                                         .where(Application.call_id == "2025-project")).all())
        for state, app_id in by_state.items():
            allowed = set(wm.triggers_from({state}))
            for trigger in wm.triggers:
                if trigger in allowed:
                    continue
                before = fingerprint(cli.db)
                with pytest.raises(engine.EngineError) as err:
                    engine.advance_in_tx(e, "2025-project", trigger, ADMIN, only=[app_id])
                assert "can take" in str(err.value) and "possible now" in str(err.value)
                assert fingerprint(cli.db) == before
                refused_pairs.add((state, trigger))

    check_all()
    for trigger, now, actor in steps:
        clock.set_now(now)
        engine.advance_in_tx(e, "2025-project", trigger, actor)
        check_all()
    e.dispose()
    assert ("draft", "close_review") in refused_pairs and ("eligible", "submit") in refused_pairs


def test_cli_refuses_illegal_move_with_clear_message(small_call):
    r = small_call("advance", "2025-project", "fund", "--only", "A0001", ok=False,
                   now="2025-03-20")
    assert r.exit_code == 1
    assert "no application of 2025-project can take fund now (it needs state awarded)" in r.output
    assert "possible now: close_declaration, submit, withdraw" in r.output


def test_scheduler_may_not_take_the_leadership_decision(small_call):
    e = make_engine(small_call.db)
    with pytest.raises(Refused) as err:
        engine.advance_in_tx(e, "2025-project", "propose", system())
    e.dispose()
    assert "scheduler (scheduler) may not fire propose; it is for approver" in str(err.value)
    r = small_call("advance", "2025-project", "propose", ok=False, actor="scheduler")
    assert r.exit_code == 1 and "'scheduler' is the system's own identity" in r.output


def test_unknown_application_in_only(small_call):
    r = small_call("advance", "2025-project", "submit", "--only", "NOPE", ok=False,
                   now="2025-03-20")
    assert r.exit_code == 1 and "no application NOPE in call 2025-project" in r.output


def test_unknown_call(small_call):
    r = small_call("advance", "2030-none", "submit", ok=False)
    assert r.exit_code == 1 and "no call '2030-none'" in r.output
