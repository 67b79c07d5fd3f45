"""Classes of society (整体规划，分类实施): each class rated, funded and ranked by its own rule.

A society carries a class (imported like its other fields, shown wherever the society is);
a star call may give a class its own maxima, weights, thresholds and share of the reward
pool, and a project call its own budget (per category within it) to rank within.
"""
from __future__ import annotations

from worlds import (
    CALL,
    app_state,
    applications,
    call_file,
    json_of,
    people,
    rated_star_call,
    refused,
    reviewed,
    societies,
    star_rows,
    states,
    write_csv,
)

from lifecycle import kinds

MEDICINE = {"id": "医科", "name_en": "Medicine", "maxima": {"IN1": 120, "SG5": 30},
            "thresholds": {"5": 880, "4": 780, "3": 680, "2": 580, "1": 480}}


def _levels(cli, call_id):
    return {r["society"]: (r["level"], r["class"]) for r in json_of(cli("stars", call_id,
                                                                         "--json"))}


def test_a_class_threshold_decides_a_star_level_the_default_sheet_would_not(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3, classes={"S001": "医科", "S002": "理科"})
    # 2025: 医科 has its own maxima and thresholds; 理科 is not listed: the call's own sheet
    first = call_file(tmp_path, {"star": {"classes": [MEDICINE]}}, example="star")
    rated_star_call(cli, tmp_path, first, {"S001": 0.79, "S002": 0.79},
                    classes={"S001": "医科"})
    assert _levels(cli, "2025-star") == {"S001": (4, "医科"), "S002": (3, "理科")}
    why = app_state(cli, "2025-star-S001")["application"]["decision_reason"]
    assert why.startswith("★★★★ (4): total 789 ") and \
        "by the 医科 rule (thresholds 880/780/680/580/480)" in why
    assert "by the" not in app_state(cli, "2025-star-S002")["application"]["decision_reason"]
    sheet = {r["indicator"]: r["max"] for r in app_state(cli, "2025-star-S001")["star_scores"]}
    assert (sheet["IN1"], sheet["SG5"], sheet["IN2"]) == (120, 30, 80)
    out = cli("stars", "2025-star").output
    assert "医科" in out and "理科" in out
    assert "sheet of class 医科 (1000 points)" in cli("star", "sheet", "2025-star",
                                                     "--class", "医科").output
    shown = json_of(cli("society", "show", "S001", "--json"))
    assert shown["society"]["class"] == "医科" and shown["applications"][0]["class"] == "医科"

    # 2026: the same work on the call's one sheet: 医科 falls to the default 3 stars
    second = call_file(tmp_path, example="star", years=1)
    rated_star_call(cli, tmp_path, second, {"S001": 0.79, "S002": 0.79})
    table = {r["society"]: (r["level"], r["change"]) for r in json_of(cli("stars", "2026-star",
                                                                          "--json"))}
    assert table == {"S001": (3, "lowered"), "S002": (3, "kept")}


def test_class_maxima_are_enforced_at_import_with_the_row_named(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=1, classes={"S001": "医科"})
    path = call_file(tmp_path, {"star": {"classes": [MEDICINE]}}, example="star")
    cli("call", "create", path, now="2025-06-01")
    call = kinds.load(path)
    rows = star_rows(call, {"S001": 0.5, "S002": 0.5}, classes={"S001": "医科"})
    for r in rows:
        if r["indicator"] == "IN1":
            r["self_score"] = 110  # within 医科's 120, above the call's 100
    out = refused(cli, "star", "declare", call.id, write_csv(tmp_path / "self.csv", rows),
                  now="2025-06-05")
    bad = [line for line in out.splitlines() if "outside" in line]
    assert len(bad) == 1 and "column self_score: 110 is outside 0..100 for IN1" in bad[0]
    assert f"row {2 + 18}" in bad[0]  # S002's first row: the header, then 18 rows of S001


def test_class_shares_of_the_reward_pool_cut_rewards_pro_rata(cli, tmp_path):
    people(cli, tmp_path, n_societies=3, n_experts=3,
           classes={"S001": "医科", "S002": "医科", "S003": "工科"})
    path = call_file(tmp_path, {"budget_total": 400_000, "star": {"classes": [
        {"id": "医科", "reward_share": 25}, {"id": "工科", "reward_share": 75}]}},
        example="star")
    rated_star_call(cli, tmp_path, path, {"S001": 0.85, "S002": 0.85, "S003": 0.85})
    rewards = {r["society"]: r["reward"] for r in json_of(cli("stars", "2025-star", "--json"))}
    # 医科: two 4-star rewards of 150,000 against a pool of 100,000: each cut to a third
    assert rewards == {"S001": 50_000, "S002": 50_000, "S003": 150_000}
    why = app_state(cli, "2025-star-S001")["application"]["decision_reason"]
    assert "reward 50,000 (150,000 cut to 33.3%: the 医科 rewards would exceed its pool " \
           "100,000, 25% of 400,000)" in why


def test_a_society_of_no_listed_class_is_refused_when_classes_share_the_pool(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3, classes={"S001": "医科"})
    path = call_file(tmp_path, {"star": {"classes": [{"id": "医科", "reward_share": 100}]}},
                     example="star")
    rated_star_call(cli, tmp_path, path, {"S001": 0.85, "S002": 0.85})
    assert states(cli, "2025-star") == {"starred": 1, "ineligible": 1}
    because = [h for h in app_state(cli, "2025-star-S002")["history"]
               if h["action"] == "close_declaration"][0]["payload"]["because"]
    assert because == ["2025-star shares its reward pool among the classes 医科: a society of "
                       "no class is not rated"]


# --- project calls: budgets and ranking per class -------------------------------------------

def _by_class(budgets: dict) -> dict:
    """The example call with its budget of 100,000 divided by class, every cap 20,000."""
    return {"budget_total": 100_000,
            "categories": {i: {"budget": None, "cap": 20_000} for i in range(5)},
            "classes": budgets}


def test_a_project_call_ranks_and_cuts_within_each_class(cli, tmp_path):
    path = call_file(tmp_path, _by_class([
        {"id": "理科", "budget": 60_000},
        {"id": "医科", "budget": 40_000, "categories": {"academic": 20_000}}]))
    apps = applications(6, ("academic",), per_society=1)
    soc = societies(6, S001={"class": "医科"}, S002={"class": "医科"}, S003={"class": "理科"},
                    S004={"class": "理科"}, S005={"class": "理科"}, S006={"class": "农科"})
    reviewed(cli, tmp_path, lambda a, k: {"A0001": 95, "A0002": 92, "A0003": 85, "A0004": 88,
                                          "A0005": 90, "A0006": 99}[a],
             n_apps=6, call=path, soc=soc, apps=apps)
    assert states(cli) == {"reviewed": 5, "ineligible": 1}
    because = [h for h in app_state(cli, "A0006")["history"]
               if h["action"] == "close_declaration"][0]["payload"]["because"]
    assert because == [f"society class 农科 has no share of {CALL} (理科, 医科)"]
    cli("advance", CALL, "rank", now="2025-05-08")
    rows = {r["application"]: r for r in json_of(cli("rank", CALL, "--json"))["rows"]}
    assert {a: (r["class"], r["rank"], r["recommended"]) for a, r in rows.items()} == {
        "A0001": ("医科", 1, True), "A0002": ("医科", 2, False),
        "A0005": ("理科", 1, True), "A0004": ("理科", 2, True), "A0003": ("理科", 3, True)}
    assert rows["A0001"]["reason"] == ("rank 1 in 医科/academic, score 95.00: proposed, 20,000 "
                                       "within the 医科/academic budget (0 left)")
    assert rows["A0002"]["reason"].startswith("rank 2 in 医科/academic, score 92.00: not proposed: "
                                              "the 医科/academic budget had 0 left when its "
                                              "turn came")
    assert rows["A0003"]["reason"].endswith("within the 理科 budget (0 left)")
    assert "医科/academic" in cli("rank", CALL).output
