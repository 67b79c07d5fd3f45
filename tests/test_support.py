"""Steady support for outstanding results (重点支持，激励进步), applied by the batch loaders.

An earlier 优秀 (or a star held) earns what the call's `support` rules say: points on the
ranking score, a declaration beyond the one per category, a higher cap, or the outstanding
project's continuation funded without competing; each is in the reason, the audit trail
and `society show`.
"""
from __future__ import annotations

from worlds import (
    app_state,
    assess_checkpoint,
    audit_events,
    call_file,
    funded_project_call,
    json_of,
    people,
    rated_star_call,
    states,
    write_csv,
)

BONUS = {"support": [{"id": "excellent", "earned_by": "grade", "grades": ["优秀"],
                      "within_calls": 1, "bonus": 3}]}


def _first_year(cli, tmp_path, grades):
    """2025: one academic project per society, funded and graded once (final acceptance)."""
    call_id, _ = funded_project_call(cli, tmp_path, list(grades), call_file(tmp_path))
    assess_checkpoint(cli, tmp_path, call_id, {f"{call_id}-{s}": g for s, g in grades.items()},
                      opened="2025-12-01", graded="2025-12-16", decided="2025-12-17")
    return call_id


def test_an_earlier_excellent_changes_a_later_ranking_by_exactly_the_bonus(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3)
    first = _first_year(cli, tmp_path, {"S001": 95, "S002": 85})  # 优秀, 良好
    nxt, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                 call_file(tmp_path, BONUS, years=1),
                                 totals={"S001": 84, "S002": 86}, until="rank")
    rows = {r["application"]: r for r in json_of(cli("rank", nxt, "--json"))["rows"]}
    a, b = rows[f"{nxt}-S001"], rows[f"{nxt}-S002"]
    assert (a["score"], a["rank"], b["score"], b["rank"]) == (87.0, 1, 86.0, 2)
    assert a["reason"].startswith(f"rank 1 in academic, score 87.00 (84.00 +3 points: 优秀 in "
                                  f"{first}): proposed")
    assert "points" not in b["reason"]
    events = audit_events(cli, call=nxt, trigger="support")
    assert [(e["application_id"], e["payload"]["text"]) for e in events] == [
        (f"{nxt}-S001", f"+3 points: 优秀 in {first}")]
    shown = json_of(cli("society", "show", "S001", "--json"))["support"]
    assert [(x["call"], x["effect"], x["amount"], x["source"]) for x in shown] == [
        (nxt, "bonus", 3.0, f"{first}-S001")]
    assert f"+3 points: 优秀 in {first}" in cli("society", "show", "S001").output

    # the same two societies a year later, past the rule's one call: no bonus
    later, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                   call_file(tmp_path, BONUS, years=2),
                                   totals={"S001": 84, "S002": 86}, until="rank")
    rows = {r["application"]: r for r in json_of(cli("rank", later, "--json"))["rows"]}
    assert (rows[f"{later}-S001"]["score"], rows[f"{later}-S001"]["rank"]) == (84.0, 2)


def test_extra_declaration_higher_cap_and_a_continuation_without_competing(cli, tmp_path):
    people(cli, tmp_path, n_societies=3, n_experts=3)
    first = _first_year(cli, tmp_path, {"S001": 95, "S002": 85})
    # S003 holds four stars
    rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"), {"S003": 0.85})
    rules = {"support": [
        {"id": "excellent", "earned_by": "grade", "extra_declarations": 1,
         "continue_without_competing": True},
        {"id": "four-stars", "earned_by": "star", "min_level": 4, "cap_percent": 50}],
        "categories": {0: {"cap": 20_000}}}
    path = call_file(tmp_path, rules, years=1)
    cli("call", "create", path, now="2026-03-01")
    nxt = "2026-project"
    rows = [{"id": f"{nxt}-{s}-{n}", "society_id": s, "category": "academic", "title": "项目",
             "requested_amount": amount, "summary": "摘要", **extra}
            for s, n, amount, extra in (
                ("S001", 1, 20_000, {"continues": f"{first}-S001"}), ("S001", 2, 20_000, {}),
                ("S002", 1, 20_000, {}), ("S002", 2, 20_000, {}),
                ("S003", 1, 30_000, {}))]
    cli("application", "import", nxt, write_csv(tmp_path / "decl.csv", rows), now="2026-03-05")
    r = json_of(cli("advance", nxt, "submit", "--json", now="2026-03-06"))
    assert r["moved"] == 4 and r["skip_reasons"] == [
        {"reason": "society already declared in this category", "count": 1}]
    second = app_state(cli, f"{nxt}-S001-2")["application"]["decision_reason"]
    assert second == (f"declaration 2 in academic, 20,000 requested: +1 declaration(s) per "
                      f"category: 优秀 in {first}")
    assert app_state(cli, f"{nxt}-S003-1")["application"]["decision_reason"] == (
        "declaration 1 in academic, 30,000 requested: cap +50%: ★★★★ of 2025-star")
    cli("advance", nxt, "close_declaration", now="2026-04-07T17:01")
    assert states(cli, nxt) == {"eligible": 4, "lapsed": 1}

    r = json_of(cli("advance", nxt, "fund_continuation", "--json", now="2026-04-08"))
    assert r["moved"] == 1
    cont = app_state(cli, f"{nxt}-S001-1")["application"]
    assert (cont["state"], cont["granted_amount"], cont["recommended"]) == \
        ("continuing", 20_000, True)
    assert cont["decision_reason"] == (f"continues {first}-S001 without competing: 优秀 in "
                                       f"{first}: 20,000 from the category budget (880,000 left)")
    kinds = [m["kind"] for m in app_state(cli, f"{nxt}-S001-1")["notifications"]]
    assert kinds[-1] == "continuation_funded"
    effects = {(e["application_id"], e["payload"]["effect"])
               for e in audit_events(cli, call=nxt, trigger="support")}
    assert effects == {(f"{nxt}-S001-2", "extra_declarations"),
                       (f"{nxt}-S003-1", "cap_percent"),
                       (f"{nxt}-S001-1", "continue_without_competing")}
    # the continuation skips review and ranking, and goes to the leadership's decision
    cli("advance", nxt, "propose", "--only", f"{nxt}-S001-1", now="2026-05-10")
    assert app_state(cli, f"{nxt}-S001-1")["application"]["state"] == "proposed"
