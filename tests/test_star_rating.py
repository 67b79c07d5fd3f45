"""The star-rated society workflow (以奖代补): one call end to end, its imports, its settings."""
from __future__ import annotations

import pytest
from worlds import (
    ROOT,
    STAR_CALL,
    advance,
    app_state,
    audit_events,
    call_file,
    json_of,
    people,
    rated_star_call,
    star_rows,
    states,
    write_csv,
)

from lifecycle import kinds
from lifecycle.core import callconfig

# totals: 0.95 -> 950 (5 stars), 0.85 -> 850 (4), 0.6 -> 600 (2, on the bound), 0.45 -> 450
Q = {"S001": 0.95, "S002": 0.85, "S003": 0.6, "S004": 0.45}


def test_a_star_call_end_to_end(cli, tmp_path):
    people(cli, tmp_path, n_societies=5, n_experts=3)
    call = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"), Q)
    assert states(cli, call.id) == {"starred": 3, "not_rated": 1}
    table = {r["society"]: r for r in json_of(cli("stars", call.id, "--json"))}
    assert {s: (r["level"], r["total"], r["reward"], r["change"], r["status"])
            for s, r in table.items()} == {
        "S001": (5, 950.0, 200000, "new", "active"), "S002": (4, 850.0, 150000, "new", "active"),
        "S003": (2, 600.0, 60000, "new", "active")}
    assert table["S001"]["valid_until"].startswith("2027-08-25")  # two years from the award
    assert len(json_of(cli("stars", "--json", now="2027-08-24"))) == 3
    assert json_of(cli("stars", "--json", now="2027-08-26")) == []
    assert {r["status"] for r in json_of(cli("stars", call.id, "--json",
                                             now="2027-08-26"))} == {"expired"}
    r = cli("star", "revoke", "S001", "--kind", "other", "--reason", "late", now="2027-09-01",
            ok=False)
    assert r.exit_code == 1 and "star expired on 2027-08-25" in r.output
    d = app_state(cli, f"{call.id}-S004")
    assert d["application"]["decision_reason"] == "no star: total 450 below one star (500)"
    d = app_state(cli, f"{call.id}-S002")
    assert d["money"]["due"] == 150000
    sheet = {r["indicator"]: r for r in d["star_scores"]}
    assert sheet["IN1"] == {"indicator": "IN1", "self": 85.0, "checked": 85.0, "final": 85.0,
                            "max": 100.0}
    assert json_of(cli("status", call.id, "--json"))["money"]["due"] == 410000
    out = cli("stars", call.id).output
    assert "★★★★★" in out and "200,000" in out
    # every transition and act is in the audit trail
    actions = [e["action"] for e in audit_events(cli, call=call.id,
                                                 application=f"{call.id}-S001")]
    assert actions == ["create", "star_self_evaluation", "submit", "close_declaration",
                       "star_check", "start_review", "star_review", "star_review",
                       "star_review", "close_review", "star_final_scores", "open_notice",
                       "close_notice", "star_award", "payment_plan"]
    assert cli("audit", "verify").exit_code == 0


def test_review_needs_enough_experts_and_checked_scores(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3)
    call = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                           {"S001": 0.9, "S002": 0.8},
                           experts=("E001", "E002"), finish=False)
    r = advance(cli, "close_review", "2025-08-16", call=call.id)  # refused: exit 3
    assert r["moved"] == 0 and r["skip_reasons"] == [{"reason": "2 of 3 expert reviews",
                                                      "count": 2}]


def test_checked_scores_and_expert_weight_make_the_total(cli, tmp_path):
    people(cli, tmp_path, n_societies=1, n_experts=3)
    path = call_file(tmp_path, example="star")
    call = kinds.load(path)
    cli("call", "create", path, now="2025-06-01")
    cli("star", "declare", call.id, write_csv(tmp_path / "self.csv",
                                              star_rows(call, {"S001": 0.9})), now="2025-06-05")
    cli("advance", call.id, "submit", now="2025-06-05")
    cli("advance", call.id, "close_declaration", now="2025-06-30T17:01")
    r = cli("advance", call.id, "start_review", now="2025-07-01", ok=False)
    assert r.exit_code == 3 and "checked scores for 0 of 18 indicators" in r.output
    cli("star", "check", call.id, write_csv(tmp_path / "checked.csv",
                                            star_rows(call, {"S001": 0.8}, "checked_score")),
        now="2025-07-02")
    cli("advance", call.id, "start_review", now="2025-07-03")
    rows = [{"expert_id": x, **r} for x in ("E001", "E002", "E003")
            for r in star_rows(call, {"S001": 0.7}, "score")]
    cli("star", "review", call.id, write_csv(tmp_path / "exp.csv", rows), now="2025-08-01")
    cli("advance", call.id, "close_review", now="2025-08-16")
    d = app_state(cli, f"{call.id}-S001")["application"]
    assert d["score"] == 750.0 and d["star_level"] == 3  # 800 * 0.5 + 700 * 0.5
    assert d["decision_reason"].startswith("★★★ (3): total 750 (checked 800, experts 700)")


def test_a_bad_self_evaluation_is_refused_whole_with_rows_named(cli, tmp_path):
    people(cli, tmp_path, n_societies=3, n_experts=3)
    path = call_file(tmp_path, example="star")
    call = kinds.load(path)
    cli("call", "create", path, now="2025-06-01")
    rows = star_rows(call, {"S001": 0.9, "S002": 0.9, "S003": 0.9})
    rows[0]["self_score"] = 101          # row 2: IN1 max 100
    rows[1]["indicator"] = "IN9"         # row 3: unknown indicator (and IN2 missing for S001)
    rows[20]["self_score"] = ""          # row 22: S002's SG... missing self-score
    rows[40]["society_id"] = "S999"      # row 42: unknown society
    rows = [r for i, r in enumerate(rows) if i != 50]  # S003 lacks one indicator
    r = cli("star", "declare", call.id, write_csv(tmp_path / "bad.csv", rows),
            now="2025-06-05", ok=False)
    assert r.exit_code == 1 and "refused, nothing was imported" in r.output
    for expected in ("row 2, column self_score: 101 is outside 0..100 for IN1 (学术交流)",
                     "row 3, column indicator: unknown indicator 'IN9'",
                     "row 22, column self_score: missing score for",
                     "row 42, column society_id: unknown society 'S999'",
                     "(S001): no score for indicator(s) IN2",
                     "(S003): no score for indicator(s)"):
        assert expected in r.output, expected
    assert states(cli, call.id) == {}
    assert audit_events(cli, call=call.id, trigger="star_self_evaluation") == []


def test_bad_checked_and_expert_files_are_refused(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3, member={"E003": "S002"})
    call = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                           {"S001": 0.9},
                           experts=("E001", "E002"), finish=False)
    rows = star_rows(call, {"S001": 0.9}, "checked_score")
    r = cli("star", "check", call.id, write_csv(tmp_path / "late.csv", rows), ok=False)
    assert r.exit_code == 1 and "rows 2, 3, 4, 5, 6, 7 ..., column society_id: the " \
        "declaration of S001 is under_review; scores are checked after the formal check" \
        in r.output
    rows = [{"expert_id": "E003", **r} for r in star_rows(call, {"S001": 0.9}, "score")]
    rows[0]["score"] = 120
    rows.append({"expert_id": "E003", "society_id": "S002", "indicator": "IN1", "score": 50})
    rows.append({"expert_id": "E404", "society_id": "S001", "indicator": "IN1", "score": 50})
    r = cli("star", "review", call.id, write_csv(tmp_path / "bad.csv", rows), ok=False)
    assert r.exit_code == 1
    for expected in ("row 2, column score: 120 is outside 0..100",
                     "E003 belongs to or declared a conflict with S002",
                     "'S002' has no declaration",
                     "row 21, column expert_id: unknown expert 'E404'",
                     "(E003/S002): no score for indicator(s) IN2"):
        assert expected in r.output, expected
    assert len(audit_events(cli, call=call.id, trigger="star_review")) == 2  # E001, E002 only


@pytest.mark.parametrize("patch, message", [
    ({"star": {"thresholds": {"5": 800, "4": 900}}},
     "thresholds: 5 stars (800) must need more than 4 stars (900)"),
    ({"star": {"capacities": {0: {"indicators": {0: {"max": 150}}}}}},
     "capacities: the indicators' maxima add up to 1050, not the scale 1000"),
    ({"star": {"rewards": {"5": None}}}, "rewards: no reward for [5] star(s)"),
])
def test_bad_star_settings_are_refused_naming_the_field(tmp_path, patch, message):
    with pytest.raises(callconfig.ConfigError) as e:
        kinds.load(call_file(tmp_path, patch, example="star"))
    assert message in str(e.value) and "field star" in str(e.value)


def test_a_bad_star_call_file_is_refused_by_the_cli(cli, tmp_path):
    r = cli("call", "create", call_file(tmp_path, {"star": {"validity_years": 0}},
                                       example="star"), ok=False)
    assert r.exit_code == 1 and "field star.validity_years" in r.output
    assert json_of(cli("call", "list", "--json")) == []


def test_the_example_self_evaluation_and_the_sheet(cli, tmp_path):
    people(cli, tmp_path, n_societies=3, n_experts=3)
    cli("call", "create", STAR_CALL, now="2025-06-01")
    r = cli("star", "declare", "2025-star", ROOT / "examples" / "star-self-evaluation.csv",
            now="2025-06-05")
    assert "3 drafts created (54 scores)" in r.output
    out = cli("star", "sheet", "2025-star", "--csv").output.splitlines()
    assert out[0] == "society_id,capacity,indicator,name,max,self_score,evidence"
    assert len(out) == 19
    assert "服务创新" in cli("star", "sheet", "2025-star").output


def test_objections_during_the_star_notice(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3)
    call = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                           {"S001": 0.9, "S002": 0.8},
                           finish=False)
    cli("advance", call.id, "close_review", now="2025-08-15T17:01")
    cli("advance", call.id, "open_notice", now="2025-08-16")
    ids = {}
    for s in ("S001", "S002"):
        r = json_of(cli("objection", "file", f"{call.id}-{s}", "--by", "王明", "--contact", "138",
                        "--reason", "indicator evidence copied", "--json", now="2025-08-18"))
        ids[s] = r["objection"]
    cli("objection", "resolve", str(ids["S001"]), "--uphold", "--reason", "evidence copied",
        now="2025-08-20")
    cli("objection", "resolve", str(ids["S002"]), "--dismiss", "--reason", "evidence is original",
        now="2025-08-25")  # after the notice ended: awarded at once
    assert states(cli, call.id) == {"starred": 1, "rejected": 1}
    table = json_of(cli("stars", call.id, "--json"))
    assert [(r["society"], r["level"]) for r in table] == [("S002", 4)]
    d = app_state(cli, f"{call.id}-S001")["application"]
    assert d["granted_amount"] == 0 and d["decision_reason"].startswith("objection")
