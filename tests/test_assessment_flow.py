"""A funded call through a mid-term check and a final acceptance: reports, grades, outcomes."""
from __future__ import annotations

from pathlib import Path

from worlds import (
    FINANCE,
    app_state,
    assess_checkpoint,
    audit_events,
    call_file,
    funded_project_call,
    grade_file,
    json_of,
    people,
    states,
)

S = ["S001", "S002", "S003", "S004", "S005", "S006"]


def test_two_checkpoints_money_and_outcomes(cli, tmp_path: Path):
    people(cli, tmp_path, n_societies=6, n_experts=4)
    call_id, call = funded_project_call(cli, tmp_path, S, call_file(tmp_path, checkpoints=True))
    a = {s: f"{call_id}-{s}" for s in S}
    assert states(cli, call_id) == {"funded": 6}
    money = json_of(cli("status", call_id, "--json"))["money"]
    assert money == {"planned": 60000, "due": 60000, "paid": 0, "withheld": 0, "recovered": 0,
                     "to_recover": 0}
    r = cli("payments", "pay", call_id, now="2025-05-25", actor=FINANCE)
    assert "paid 6 instalments to 6 applications: 60,000 yuan" in r.output

    # mid-term check: reports, grades, the proposals, one override, the batch
    r = json_of(cli("advance", call_id, "open_assessment", "--json", now="2025-06-01"))
    assert r["moved"] == 6
    deadlines = json_of(cli("deadlines", "list", call_id, "--json"))
    assert any(d["kind"] == "report_due:midterm" and d["due_at"].startswith("2025-09-15")
               for d in deadlines)
    report = tmp_path / "midterm-S001.pdf"
    report.write_bytes(b"%PDF-1.4 mid-term report")
    r = cli("assessment", "report", a["S001"], "--file", report, now="2025-09-10")
    assert "report recorded" in r.output and "LATE" not in r.output
    r = cli("assessment", "report", a["S002"], "--file", report, now="2025-09-16")
    assert "LATE (due 2025-09-15 17:00:00)" in r.output
    grades = {a["S001"]: 95, a["S002"]: 80, a["S003"]: 70, a["S004"]: 69.99, a["S005"]: 65,
              a["S006"]: 89.99}
    r = cli("assessment", "grades", call_id, grade_file(tmp_path, "mid.csv", grades),
            now="2025-09-20")
    assert "6 applications graded" in r.output
    assert json_of(cli("advance", call_id, "assess", "--json", now="2025-09-21"))["moved"] == 6
    proposed = {p["application"]: (p["grade"], p["proposed"])
                for p in json_of(cli("assessment", "outcomes", call_id, "--json"))}
    assert proposed == {a["S001"]: ("优秀", "continue"), a["S002"]: ("良好", "continue"),
                        a["S003"]: ("合格", "adjust -20%"), a["S004"]: ("不合格", "terminate"),
                        a["S005"]: ("不合格", "terminate"), a["S006"]: ("良好", "continue")}
    cli("outcome", "override", a["S005"], "--to", "continue", "--reason",
        "venue closed by the city; leadership group decision 2025-09-25", now="2025-09-25")
    r = json_of(cli("advance", call_id, "decide_outcome", "--json", now="2025-09-26"))
    assert {(m["to"], m["count"]) for m in r["moves"]} == {
        ("continued", 3), ("adjusted", 1), ("terminated", 1)}

    adjusted = app_state(cli, a["S003"])
    assert adjusted["application"]["granted_amount"] == 18000  # unpaid 10,000 cut 20%
    assert "unpaid grant cut 20% (10000 -> 8000); grant 20000 -> 18000" in \
        adjusted["application"]["decision_reason"]
    assert [(p["amount"], p["status"]) for p in adjusted["payments"]] == [
        (10000, "paid"), (4800, "due"), (3200, "planned")]
    cut = [h for h in adjusted["history"] if h["action"] == "payment_cut"][0]["payload"]
    assert (cut["old"], cut["new"]) == (10000, 8000)
    terminated = app_state(cli, a["S004"])
    assert terminated["application"]["amount_to_recover"] == 10000
    assert [p["status"] for p in terminated["payments"]] == ["paid", "cancelled", "cancelled"]
    money = json_of(cli("status", call_id, "--json"))["money"]
    assert money == {"paid": 60000, "due": 4 * 6000 + 4800, "planned": 4 * 4000 + 3200,
                     "withheld": 2000 + 10000, "recovered": 0, "to_recover": 10000}
    shown = cli("show", a["S003"]).output
    assert "paid 10,000  due 4,800  planned 3,200  withheld 2,000" in shown

    # the override is an audited transition carrying its reason
    ev = audit_events(cli, trigger="override_outcome")
    assert len(ev) == 1 and ev[0]["application_id"] == a["S005"]
    assert ev[0]["to_state"] == "continued"
    assert ev[0]["payload"]["options"]["reason"].startswith("venue closed")

    # final acceptance: everything left passes; the final instalments are released
    cli("payments", "pay", call_id, now="2025-10-01", actor=FINANCE)
    r = json_of(cli("advance", call_id, "open_assessment", "--json", now="2025-11-01"))
    assert r["moved"] == 5 and r["skipped"] == 0
    cli("assessment", "grades", call_id, grade_file(tmp_path, "final.csv", {
        a[s]: 85 for s in S if s != "S004"}), now="2025-12-16")
    cli("advance", call_id, "assess", now="2025-12-16")
    cli("advance", call_id, "decide_outcome", now="2025-12-18")
    r = json_of(cli("advance", call_id, "complete", "--json", now="2025-12-20"))
    assert r["moved"] == 5
    cli("payments", "pay", call_id, now="2025-12-21", actor=FINANCE)
    assert states(cli, call_id) == {"terminated": 1, "completed": 5}
    money = json_of(cli("status", call_id, "--json"))["money"]
    assert money == {"paid": 60000 + 4 * 10000 + 8000, "due": 0, "planned": 0,
                     "withheld": 12000, "recovered": 0, "to_recover": 10000}
    assert cli("audit", "verify").exit_code == 0


def test_complete_waits_for_the_last_checkpoint(cli, tmp_path: Path):
    people(cli, tmp_path, n_societies=3, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S003"],
                                     call_file(tmp_path, checkpoints=True))
    assess_checkpoint(cli, tmp_path, call_id, {f"{call_id}-S00{i}": 90 for i in (1, 2, 3)},
                      decided="2025-09-21")
    r = cli("advance", call_id, "complete", now="2025-09-22", ok=False)
    assert r.exit_code == 3 and "skipped 3" in r.output and "checkpoint final not yet assessed (at midterm)" in r.output
