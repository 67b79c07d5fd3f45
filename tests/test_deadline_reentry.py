"""A state entered again schedules its deadlines again, and each deadline is still written
and fired exactly once.

The deadlines here are fired only by `starfund deadlines run-due` (the path `scheduler
run` takes too): an application back in review after an upheld objection, proposed
again and in a second public notice, drafts imported after the declaration closed, a
project reaching a checkpoint after its report date. Before the fix each of them found
the first, already fired row under the same key, scheduled nothing, and waited forever.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from worlds import (
    CALL,
    applications,
    assignments,
    audit_events,
    call_file,
    deadlines,
    experts,
    file_objection,
    funded_project_call,
    grade_file,
    json_of,
    people,
    run_due,
    score,
    societies,
    state_of,
    write_csv,
)

# --- helpers -------------------------------------------------------------------------------

def main_deadlines(cli, call: str = CALL) -> dict[str, dict[str, Any]]:
    """The call's closing deadlines (not their reminders), by key."""
    return {k: d for k, d in deadlines(cli, call).items() if d["action"] == "advance"}


def fired_marks(cli) -> list[str]:
    """The deadline of every `deadline_fired` audit event, in order."""
    return [e["payload"]["deadline"] for e in audit_events(cli, actor="scheduler")
            if e["action"] == "deadline_fired"]


def reviewed_by_deadlines(cli, tmp_path: Path, n: int, call: Path) -> None:
    """n applications declared, checked and reviewed (scores of 90), the deadlines fired by
    run-due: closing the declaration on 04-08 and the review on 05-07."""
    cli("call", "create", call, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(n)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(8)), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(n, ("academic",))),
        now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    assert [f["kind"] for f in run_due(cli, "2025-04-08") if f["action"] == "advance"] == [
        "declaration_closes"]
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    score(cli, tmp_path, {(x, a): 90 for a, xs in assignments(cli).items() for x in xs})
    assert [f["kind"] for f in run_due(cli, "2025-05-07") if f["action"] == "advance"] == [
        "reviews_due"]


# --- the objection round trip --------------------------------------------------------------

def test_an_upheld_objection_round_trip_is_driven_by_the_deadlines_alone(cli, tmp_path):
    """Back to review, reviewed, ranked, proposed and in a second notice, then awarded.

    Every move a deadline fires (close_declaration, close_review, close_notice) comes
    from `deadlines run-due`; the administrator only does what no deadline does:
    assigning, ranking, proposing, publishing the notice, filing and deciding the
    objection.
    """
    reviewed_by_deadlines(cli, tmp_path, 6,
                          call_file(tmp_path, {"review": {"upheld_objection": "review"}}))
    assert state_of(cli, "A0003") == "reviewed"
    cli("advance", CALL, "rank", now="2025-05-08")
    cli("advance", CALL, "propose", now="2025-05-09")
    cli("notice", "publish", CALL, "--html", tmp_path / "notice.html", now="2025-05-10T10:00")

    file_objection(cli, "A0003", "2025-05-12", reason="scores need a second look")
    r = cli("objection", "resolve", "1", "--uphold", "--reason", "second look", now="2025-05-13")
    assert "A0003 now under_review" in r.output
    # back in review: the review deadline was due (and fired) on 05-06, so this entry has
    # a deadline of its own, due at once, and run-due closes its review
    fired = run_due(cli, "2025-05-13T12:00")
    assert state_of(cli, "A0003") == "reviewed"
    assert [(f["key"], f["outcome"]) for f in fired] == [("2025-project:reviews_due#2", "fired")]
    assert "1 under_review->reviewed" in fired[0]["note"]
    assert main_deadlines(cli)["2025-project:reviews_due#2"]["due_at"] == "2025-05-06 17:00:00"

    # the first notice ends: the five others are awarded
    fired = run_due(cli, "2025-05-17")
    assert [f["key"] for f in fired] == ["2025-project:notice_ends"]
    assert "5 in_notice->awarded" in fired[0]["note"]
    cli("advance", CALL, "rank", now="2025-05-18")
    cli("advance", CALL, "propose", now="2025-05-19")
    r = cli("notice", "publish", CALL, "--html", tmp_path / "again.html", now="2025-05-20T09:00")
    assert "notice opened for 1" in r.output
    assert run_due(cli, "2025-05-26T23:59") == []                     # its notice still runs
    assert state_of(cli, "A0003") == "in_notice"
    fired = run_due(cli, "2025-05-27")
    assert state_of(cli, "A0003") == "awarded"
    assert [(f["key"], f["note"]) for f in fired] == [
        ("2025-project:notice_ends#2", "moved 1 (1 in_notice->awarded)")]
    assert main_deadlines(cli)["2025-project:notice_ends#2"]["due_at"] == "2025-05-27 00:00:00"

    # each deadline was written once and fired once; nothing is left and nothing fires again
    rows = main_deadlines(cli)
    assert sorted(rows) == ["2025-project:declaration_closes", "2025-project:notice_ends",
                            "2025-project:notice_ends#2", "2025-project:reviews_due",
                            "2025-project:reviews_due#2"]
    assert all(d["fired_at"] and d["attempts"] == 1 for d in rows.values())
    marks = fired_marks(cli)
    assert sorted(m for m in marks if m in rows) == sorted(rows)
    assert run_due(cli, "2025-06-30") == []
    assert json_of(cli("status", CALL, "--json"))["granted"] == 6 * 20000
    assert cli("audit", "verify").exit_code == 0


def test_a_second_notice_opened_after_the_first_ended_closes_on_its_own_deadline(cli, tmp_path):
    """Proposed in two rounds: the second round's notice gets a deadline of its own."""
    reviewed_by_deadlines(cli, tmp_path, 4, call_file(tmp_path))
    cli("advance", CALL, "rank", now="2025-05-08")
    cli("advance", CALL, "propose", "--only", "A0001", "--only", "A0002", now="2025-05-09")
    cli("notice", "publish", CALL, "--html", tmp_path / "n1.html", now="2025-05-10T10:00")
    run_due(cli, "2025-05-17")
    assert {state_of(cli, a) for a in ("A0001", "A0002")} == {"awarded"}
    cli("advance", CALL, "propose", now="2025-05-19")
    cli("notice", "publish", CALL, "--html", tmp_path / "n2.html", now="2025-05-20T09:00")
    assert run_due(cli, "2025-05-26") == []
    fired = run_due(cli, "2025-05-27")
    assert {state_of(cli, a) for a in ("A0003", "A0004")} == {"awarded"}
    assert [(f["key"], f["note"]) for f in fired] == [
        ("2025-project:notice_ends#2", "moved 2 (2 in_notice->awarded)")]


def test_back_in_the_notice_after_a_dismissed_objection_changes_nothing_it_should_not(
        cli, tmp_path):
    """Returning to the notice is an entry too: it schedules a notice end counted from the
    return, later than the notice's own; the notice still ends on time, and the later
    deadline, when it fires, finds nothing to move."""
    reviewed_by_deadlines(cli, tmp_path, 4, call_file(tmp_path))
    cli("advance", CALL, "rank", now="2025-05-08")
    cli("advance", CALL, "propose", now="2025-05-09")
    cli("notice", "publish", CALL, "--html", tmp_path / "n.html", now="2025-05-10T10:00")
    file_objection(cli, "A0002", "2025-05-12")
    r = cli("objection", "resolve", "1", "--dismiss", "--reason", "unfounded", now="2025-05-13")
    assert "A0002 now in_notice" in r.output
    fired = run_due(cli, "2025-05-17")
    assert [(f["key"], f["note"]) for f in fired] == [
        ("2025-project:notice_ends", "moved 4 (4 in_notice->awarded)")]
    fired = run_due(cli, "2025-05-20")
    assert [f["key"] for f in fired] == ["2025-project:notice_ends#2"]
    assert fired[0]["note"].startswith("nothing to move")
    assert json_of(cli("status", CALL, "--json"))["granted"] == 4 * 20000

# --- other states entered after their deadline fired ---------------------------------------

def test_drafts_imported_after_the_declaration_closed_lapse_on_their_own_deadline(cli, tmp_path):
    cli("call", "create", call_file(tmp_path), now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(4)), now="2025-02-01")
    first = applications(4)
    cli("application", "import", CALL, write_csv(tmp_path / "a.csv", first), now="2025-03-10")
    cli("application", "import", CALL, write_csv(tmp_path / "b.csv", [
        {**r, "id": f"B{i}"} for i, r in enumerate(applications(2), 1)]), now="2025-03-12")
    # two imports before the date share the one deadline (and its reminders)
    assert list(main_deadlines(cli)) == ["2025-project:declaration_closes"]
    cli("advance", CALL, "submit", now="2025-03-20")
    run_due(cli, "2025-04-08")
    late = [{**r, "id": f"L{i}"} for i, r in enumerate(applications(3), 1)]
    cli("application", "import", CALL, write_csv(tmp_path / "late.csv", late[:2]),
        now="2025-04-09T10:00")
    cli("application", "import", CALL, write_csv(tmp_path / "late2.csv", late[2:]),
        now="2025-04-09T11:00")
    fired = run_due(cli, "2025-04-09T12:00")
    assert {state_of(cli, f"L{i}") for i in (1, 2, 3)} == {"lapsed"}
    assert [(f["key"], f["note"]) for f in fired] == [
        ("2025-project:declaration_closes#2", "moved 3 (3 draft->lapsed)")]
    rows = main_deadlines(cli)
    assert sorted(rows) == ["2025-project:declaration_closes",
                            "2025-project:declaration_closes#2"]   # one more, not two
    assert rows["2025-project:declaration_closes#2"]["due_at"] == "2025-04-07 17:00:00"
    assert run_due(cli, "2025-04-10") == []
    assert fired_marks(cli).count("2025-project:declaration_closes#2") == 1


def test_a_project_reaching_a_checkpoint_late_gets_its_own_report_deadline(cli, tmp_path: Path):
    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                     call_file(tmp_path, checkpoints=True))
    a1, a2 = f"{call_id}-S001", f"{call_id}-S002"
    run_due(cli, "2025-06-01")                       # what the setup's manual moves left behind
    cli("advance", call_id, "open_assessment", "--only", a1, now="2025-06-01")
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g1.csv", {a1: 90}),
        now="2025-09-10")
    fired = run_due(cli, "2025-09-16")
    assert [f["key"] for f in fired if f["action"] == "advance"] == [
        f"{call_id}:report_due:midterm"]
    assert state_of(cli, a1) == "assessed"
    # the second project reaches the mid-term check only after its report date
    cli("advance", call_id, "open_assessment", "--only", a2, now="2025-09-20")
    assert state_of(cli, a2) == "assessment_due"
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g2.csv", {a2: 85}),
        now="2025-09-22")
    fired = run_due(cli, "2025-09-23")
    assert [(f["key"], f["note"]) for f in fired] == [
        (f"{call_id}:report_due:midterm#2", "moved 1 (1 assessment_due->assessed)")]
    assert state_of(cli, a2) == "assessed"
    assert run_due(cli, "2025-09-24") == []


def test_a_dry_run_schedules_nothing_and_the_real_entry_schedules_once(cli, tmp_path):
    """Keys are chosen inside the advance's transaction: a dry run (rolled back) leaves no row,
    and running the same entry again chooses the same key."""
    call = call_file(tmp_path, {"review": {"upheld_objection": "review"}})
    cli("call", "create", call, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(2)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(6)), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(2, ("academic",))),
        now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    run_due(cli, "2025-04-08")
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", "--only", "A0001", now="2025-04-08")
    run_due(cli, "2025-05-07")                                   # reviews_due fired for A0001
    before = main_deadlines(cli)
    r = json_of(cli("advance", CALL, "start_review", "--dry-run", "--json", now="2025-05-08"))
    assert r["moved"] == 1 and main_deadlines(cli) == before
    r = json_of(cli("advance", CALL, "start_review", "--json", now="2025-05-08"))
    assert r["moved"] == 1 and r["deadlines"] == 1
    rows = main_deadlines(cli)
    assert sorted(rows) == sorted([*before, "2025-project:reviews_due#2"])
    fired = run_due(cli, "2025-05-08T01:00")
    assert [f["key"] for f in fired] == ["2025-project:reviews_due#2"]
    assert run_due(cli, "2025-05-09") == []
