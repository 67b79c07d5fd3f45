"""Dynamic management of stars over the years: kept, raised, lowered, lost, revoked, barred."""
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
    societies,
    star_rows,
    states,
    write_csv,
)

from lifecycle import kinds

YEAR1 = {"S001": 0.95, "S002": 0.85, "S003": 0.75, "S004": 0.65, "S005": 0.55, "S006": 0.45,
         "S007": 0.65}
YEAR2 = {"S001": 0.85, "S002": 0.95, "S003": 0.75, "S004": 0.9, "S005": 0.9, "S006": 0.55,
         "S007": 0.45}


def test_two_years_of_stars(cli, tmp_path):
    people(cli, tmp_path, n_societies=8, n_experts=3)
    first = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"), YEAR1)
    assert states(cli, first.id) == {"starred": 6, "not_rated": 1}

    # between the ratings: a penalty (one by one, with reason) and a failed inspection (batch)
    r = cli("star", "revoke", "S005", "--kind", "penalty", "--reason", "", ok=False)
    assert r.exit_code == 1 and "a revocation needs a reason" in r.output
    cli("star", "revoke", "S005", "--kind", "penalty",
        "--reason", "administrative penalty by the civil affairs bureau, 2025-11-03",
        now="2025-11-05")
    soc = societies(8)
    soc[3]["annual_inspection_passed"] = "no"
    cli("society", "import", write_csv(tmp_path / "soc2.csv", soc), now="2026-03-01")
    r = json_of(cli("advance", first.id, "review_standing", "--json", now="2026-03-02"))
    assert r["moved"] == 1 and r["skip_reasons"] == [{"reason": "society in good standing",
                                                      "count": 4}]
    assert json_of(cli("society", "show", "S004", "--json"))["star_history"][0]["end_reason"] \
        == "society did not pass the annual inspection (年检)"

    second = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star", years=1), YEAR2)
    assert states(cli, second.id) == {"starred": 4, "not_rated": 1, "ineligible": 2}
    why = {s: [h for h in app_state(cli, f"{second.id}-{s}")["history"]
               if h["action"] == "close_declaration"][0]["payload"]["because"][0]
           for s in ("S004", "S005")}
    assert why["S004"] == "society did not pass the annual inspection (年检)"
    assert why["S005"].startswith("society barred: star of 2025-star revoked on 2025-11-05 "
                                  "(penalty: administrative penalty")

    table = {r["society"]: r for r in json_of(cli("stars", second.id, "--json"))}
    assert {s: (r["level"], r["change"], r["previous_level"], r["reward"])
            for s, r in table.items()} == {
        "S001": (4, "lowered", 5, 150000), "S002": (5, "raised", 4, 200000),
        "S003": (3, "kept", 3, 100000), "S006": (1, "new", None, 30000)}
    old = {r["society"]: (r["status"], r["end_reason"])
           for r in json_of(cli("stars", first.id, "--json"))}
    assert old["S001"] == ("superseded", "superseded by 2026-star: ★★★★★ -> ★★★★ (lowered)")
    assert old["S007"] == ("lost", "rating of 2026-star: total 450 below one star (500)")
    assert old["S005"][0] == "revoked" and old["S004"][0] == "revoked"
    valid_now = {r["society"]: r["level"] for r in json_of(cli("stars", "--json",
                                                                now="2026-09-01"))}
    assert valid_now == {"S001": 4, "S002": 5, "S003": 3, "S006": 1}

    prof = json_of(cli("society", "show", "S001", "--json"))
    assert [(h["call"], h["level"], h["status"]) for h in prof["star_history"]] == [
        ("2025-star", 5, "superseded"), ("2026-star", 4, "active")]
    assert prof["current_star"]["level"] == 4
    assert [a["id"] for a in prof["applications"]] == ["2025-star-S001", "2026-star-S001"]
    out = cli("society", "show", "S007").output
    assert "current star: none" in out and "lost" in out

    # all of it in the audit trail
    acts = {e["action"] for e in audit_events(cli)}
    assert {"star_award", "star_superseded", "star_lost", "star_revoked", "revoke",
            "review_standing"} <= acts
    rev = audit_events(cli, trigger="revoke")[0]
    assert (rev["application_id"], rev["from_state"], rev["to_state"]) == \
        ("2025-star-S005", "starred", "revoked")
    assert rev["payload"]["options"] == {
        "kind": "penalty", "reason": "administrative penalty by the civil affairs bureau, "
                                     "2025-11-03"}
    ups = {e["payload"]["society"]: e["payload"]["change"]
           for e in audit_events(cli, call=second.id, trigger="star_award")}
    assert ups == {"S001": "lowered", "S002": "raised", "S003": "kept", "S006": "new"}

    # the bar of a revocation lasts one star call; a star cannot be revoked twice
    r = cli("star", "revoke", "S005", "--kind", "other", "--reason", "again", ok=False)
    assert r.exit_code == 1 and "S005 has no current star" in r.output
    third = call_file(tmp_path, example="star", years=2)

    cfg = kinds.load(third)
    cli("call", "create", third, now="2027-06-01")
    cli("star", "declare", cfg.id, write_csv(tmp_path / "s3.csv", star_rows(cfg, {"S005": 0.9})),
        now="2027-06-05")
    cli("advance", cfg.id, "submit", now="2027-06-05")
    cli("advance", cfg.id, "close_declaration", now="2027-06-30T17:01")
    assert states(cli, cfg.id) == {"eligible": 1}
    assert cli("audit", "verify").exit_code == 0


def test_a_failed_project_bars_the_society_from_the_next_star_call(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                     call_file(tmp_path, checkpoints=True))
    assess_checkpoint(cli, tmp_path, call_id, {f"{call_id}-S001": 30, f"{call_id}-S002": 95},
                      graded="2025-06-01", decided="2025-06-01")
    star = rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                           {"S001": 0.9, "S002": 0.9})
    assert states(cli, star.id) == {"ineligible": 1, "starred": 1}
    d = app_state(cli, f"{star.id}-S001")
    assert "was terminated" in [h for h in d["history"] if h["action"] == "close_declaration"][
        0]["payload"]["because"][0]
