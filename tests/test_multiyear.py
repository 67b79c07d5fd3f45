"""Two programme years with both workflows: last year's outcomes and stars change this year."""
from __future__ import annotations

from worlds import (
    FINANCE,
    Cli,
    app_state,
    audit_events,
    call_file,
    funded_project_call,
    grade_file,
    json_of,
    people,
    rated_star_call,
    states,
)


def _because(cli, app_id: str) -> str:
    d = app_state(cli, app_id)
    return [h for h in d["history"] if h["action"] == "close_declaration"][0]["payload"][
        "because"][0]


def test_two_years_of_both_workflows(cli, tmp_path):
    people(cli, tmp_path, n_societies=5, n_experts=4)
    # year 1: projects of S001..S003; S001 fails its mid-term check and is terminated
    p1, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S003"],
                                call_file(tmp_path, checkpoints=True))
    cli("payments", "pay", p1, now="2025-05-25", actor=FINANCE)
    # year 1: star rating; S002 3 stars, S003 4 stars, S004 2 stars
    s1 = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                         {"S002": 0.75, "S003": 0.85, "S004": 0.65}).id
    cli("advance", p1, "open_assessment", now="2025-09-01")
    cli("assessment", "grades", p1, grade_file(tmp_path, "m.csv", {
        f"{p1}-S001": 55, f"{p1}-S002": 88, f"{p1}-S003": 74}), now="2025-09-16")
    cli("advance", p1, "assess", now="2025-09-16")
    cli("advance", p1, "decide_outcome", now="2025-09-20")
    cli("advance", p1, "open_assessment", now="2025-11-20")
    cli("assessment", "grades", p1, grade_file(tmp_path, "f.csv", {
        f"{p1}-S002": 91, f"{p1}-S003": 82}), now="2025-12-16")
    cli("advance", p1, "assess", now="2025-12-16")
    cli("advance", p1, "decide_outcome", now="2025-12-18")
    cli("advance", p1, "complete", now="2025-12-20")
    cli("payments", "pay", p1, now="2025-12-21", actor=FINANCE)
    assert states(cli, p1) == {"terminated": 1, "completed": 2}
    assert json_of(cli("status", p1, "--json"))["money"] == {
        "planned": 0, "due": 0, "paid": 10000 + 20000 + 18000, "withheld": 2000 + 10000,
        "recovered": 0, "to_recover": 10000}

    # year 2: the failure bars S001 from both calls; stars move; rewards follow the levels
    p2, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S004"],
                                call_file(tmp_path, checkpoints=True, years=1))
    assert states(cli, p2) == {"ineligible": 1, "funded": 2}
    assert _because(cli, f"{p2}-S001").startswith(f"society barred: project {p1}-S001")
    s2 = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star", years=1),
                         {"S001": 0.95, "S002": 0.85, "S003": 0.75, "S004": 0.45}).id
    assert _because(cli, f"{s2}-S001").startswith(f"society barred: project {p1}-S001")
    table = {r["society"]: (r["level"], r["change"], r["reward"])
             for r in json_of(cli("stars", s2, "--json"))}
    assert table == {"S002": (4, "raised", 150000), "S003": (3, "lowered", 100000)}
    rewards = [sum(r["reward"] for r in json_of(cli("stars", c, "--json"))) for c in (s1, s2)]
    assert rewards == [100000 + 150000 + 60000, 250000]
    prof = json_of(cli("society", "show", "S004", "--json"))
    assert [(h["call"], h["status"]) for h in prof["star_history"]] == [(s1, "lost")]
    assert [a["id"] for a in prof["applications"]] == [f"{s1}-S004", f"{p2}-S004",
                                                       f"{s2}-S004"]
    acts = [(e["action"], e["call_id"]) for e in audit_events(cli, application=f"{s1}-S004")]
    assert ("star_lost", s1) in acts
    assert cli("audit", "verify").exit_code == 0


def test_the_demo_runs_three_years_with_classes_support_and_model_societies(db_url, tmp_path):
    cli = Cli(db_url, actor="sun-li")  # an empty database: the demo only fills one it makes
    r = cli("demo", "--years", "3", "--societies", "20", "--outbox", tmp_path / "out",
            "--db", cli.db)
    out = r.output
    for text in ("programme year 2025", "programme year 2026", "star call 2026-star created",
                 "midterm outcomes", "final outcomes", "project funding per year",
                 "star rating per year", "barred from 2026-star",
                 "continues 2025-project-", "ranked with a bonus for an earlier 优秀",
                 "+3 points: 优秀 in 2025-project", "none named yet"):
        assert text in out, text
    year3 = out.split("programme year 2027")[1]
    assert "named a model society (示范学会):" in year3 and "(rule " in year3
    models = json_of(cli("model", "list", "2027-star", "--json"))
    assert models and all(m["class"] for m in models)
    rows = json_of(cli("rank", "2026-project", "--json"))["rows"]
    assert {r["class"] for r in rows} >= {"理科", "工科"}
    assert "intact" in out.split("audit chain:")[1].splitlines()[0]
    assert json_of(cli("stars", "2026-star", "--json"))  # read as the demo's auditor
    assert "who did what" in out and "chen-jing" in out.split("who did what")[1]
    # the report's years are the demo's closing tables (lifecycle.reporting.figures)
    years = json_of(cli("report", "--year", "2027", "--json"))["years"]
    table = out.split("star rating per year")[1]
    for y in years:
        row = next(line for line in table.splitlines() if f"│ {y['year']} │" in line)
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[3:9] == [str(y["moves"][m]) for m in
                              ("new", "raised", "kept", "lowered", "lost", "revoked")], cells
    assert [y["year"] for y in years] == [2025, 2026, 2027]
    star_apps = [e for e in audit_events(cli, call="2026-star", trigger="close_declaration")
                 if e["to_state"] == "ineligible"]
    assert any("star of 2025-star revoked" in why for e in star_apps
               for why in e["payload"]["because"])
    revoked = [e for e in audit_events(cli, trigger="revoke")]
    assert len(revoked) == 3 and all(e["payload"]["options"]["reason"] for e in revoked)
