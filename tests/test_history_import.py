"""`starfund history import`: earlier years' results count for the rules that read history as
calls run inside starfund do (the bar after a terminated project, steady support, model
societies, star changes); bad rows are named and change nothing; each year is audited with the
file's SHA-256."""
from __future__ import annotations

import hashlib
from pathlib import Path

from worlds import (
    CALL,
    EXAMPLE_CALL,
    app_state,
    applications,
    audit_events,
    call_file,
    fingerprint,
    funded_project_call,
    json_of,
    people,
    rated_star_call,
    societies,
    write_csv,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "history.csv"
COLUMNS = ("year", "society", "kind", "project", "title", "grade", "terminated", "stars",
           "model")


def _history(tmp_path: Path, rows: list[dict], name: str = "history.csv") -> Path:
    return write_csv(tmp_path / name, [{c: r.get(c, "") for c in COLUMNS} for r in rows])


def test_a_society_terminated_the_year_before_is_barred(cli, tmp_path):
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(4)), now="2025-02-01")
    r = cli("history", "import", EXAMPLE, now="2025-02-02")
    assert "6 result(s) of 2023 (1), 2024 (5) imported" in r.output, r.output
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    events = audit_events(cli, trigger="history_import")
    assert [(e["payload"]["year"], e["payload"]["sha256"], e["payload"]["rows"])
            for e in events] == [(2023, digest, 1), (2024, digest, 5)]
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", applications(8)),
        now="2025-03-10T10:00")
    cli("advance", CALL, "submit", now="2025-03-20T10:00")
    cli("advance", CALL, "close_declaration", now="2025-04-08T09:00")
    by_society: dict[str, set[str]] = {}
    for n in range(1, 9):
        d = app_state(cli, f"A{n:04d}")
        app = d["application"]
        by_society.setdefault(app["society_id"], set()).add(app["state"])
        if app["society_id"] == "S002":
            why = [h for h in d["history"] if h["action"] == "close_declaration"][0]
            assert why["payload"]["because"] == [
                "society barred: project 2024-023 of call 2024 project (history) was "
                "terminated (bars the next 2 call(s))"], why
    assert by_society["S002"] == {"ineligible"}
    assert by_society["S001"] == {"eligible"}       # an 优秀 in 2024 bars no one
    shown = cli("society", "show", "S002").output
    assert "earlier years (history import)" in shown and "2024-023" in shown
    again = cli("history", "import", EXAMPLE, now="2025-04-09", ok=False)
    assert again.exit_code == 1 and "was imported already" in again.output


def test_an_earlier_excellent_earns_steady_support_as_one_run_inside_would(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=3)
    cli("history", "import", _history(tmp_path, [
        {"year": 2024, "society": "S001", "project": "2024-017", "grade": "优秀"},
        {"year": 2024, "society": "S002", "project": "2024-018", "grade": "良好"}]),
        now="2025-01-10")
    bonus = {"support": [{"id": "excellent", "earned_by": "grade", "grades": ["优秀"],
                          "within_calls": 1, "bonus": 3}]}
    nxt, _ = funded_project_call(cli, tmp_path, ["S001", "S002"], call_file(tmp_path, bonus),
                                 totals={"S001": 84, "S002": 86}, until="rank")
    rows = {r["application"]: r for r in json_of(cli("rank", nxt, "--json"))["rows"]}
    a, b = rows[f"{nxt}-S001"], rows[f"{nxt}-S002"]
    assert (a["score"], a["rank"], b["score"], b["rank"]) == (87.0, 1, 86.0, 2)
    assert "(84.00 +3 points: 优秀 in 2024 project (history))" in a["reason"], a["reason"]


def test_imported_stars_count_for_model_societies_and_star_changes(cli, tmp_path):
    people(cli, tmp_path, n_societies=3, n_experts=3)
    cli("history", "import", _history(tmp_path, [
        {"year": 2024, "society": "S001", "kind": "star", "stars": 5, "model": "yes"},
        {"year": 2024, "society": "S002", "kind": "star", "stars": 3}]), now="2025-01-10")
    rules = {"star": {"model": {"rules": [{"min_level": 5, "in_a_row": 2}]}}}
    call = rated_star_call(cli, tmp_path, call_file(tmp_path, rules, example="star"),
                           {"S001": 0.95, "S002": 0.95, "S003": 0.95}, finish=False)
    cli("advance", call.id, "close_review", now="2025-08-15T17:01")
    r = cli("notice", "publish", call.id, "--html", tmp_path / "notice.html", "--json",
            now="2025-08-16")
    assert json_of(r)["models"] == ["市测试1学会"]    # five stars in 2024 (imported) and now
    cli("advance", call.id, "close_notice", now="2025-08-26")
    changes = {e["payload"]["society"]: (e["payload"]["change"], e["payload"]["previous_level"])
               for e in audit_events(cli, call=call.id, trigger="star_award")}
    assert changes == {"S001": ("kept", 5), "S002": ("raised", 3), "S003": ("new", None)}
    r = json_of(cli("advance", call.id, "name_models", "--json", now="2025-08-27"))
    assert r["moves"] == [{"from": "starred", "to": "model_society", "count": 1}]
    assert "2024 star (history) and " in app_state(cli, f"{call.id}-S001")["application"][
        "decision_reason"]


def test_bad_rows_are_named_and_nothing_is_imported(cli, tmp_path):
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(2)), now="2025-02-01")
    before = fingerprint(cli.db)
    bad = _history(tmp_path, [
        {"year": 2024, "society": "S009", "project": "p1", "grade": "优秀"},        # row 2
        {"year": 2024, "society": "S001", "project": "p2", "grade": "超级"},        # row 3
        {"year": 2025, "society": "S001", "project": "p3", "grade": "合格"},        # row 4
        {"year": 2024, "society": "S001", "kind": "star", "stars": 7},             # row 5
        {"year": 2024, "society": "S002", "project": "p4"},                        # row 6
        {"year": 2024, "society": "S002", "kind": "lottery", "project": "p5",      # row 7
         "grade": "优秀"},
        {"year": 2024, "society": "S001", "project": "p2", "grade": "合格"},        # row 8
    ])
    r = cli("history", "import", bad, now="2025-02-02", ok=False)
    assert r.exit_code == 1
    out = r.output
    assert "refused, nothing was imported" in out
    assert "row 2, column society: unknown society 'S009'" in out
    assert "row 3, column grade: '超级' is not a grade (accepted: 优秀, 良好, 合格, 不合格)" in out
    assert "row 4, column year: 2025 is not an earlier year" in out
    assert "row 5, column stars: 7 is not a star level (0-5)" in out
    assert "row 6: a project result has a grade, or was terminated" in out
    assert "row 7, column kind: unknown workflow 'lottery'" in out
    assert "row 8: the same result as row 3" in out
    assert fingerprint(cli.db) == before

    cli("call", "create", EXAMPLE_CALL, now="2024-12-01")   # a call of 2024 run inside
    late = _history(tmp_path, [{"year": 2024, "society": "S001", "project": "p", "grade": "优秀"}],
                    name="late.csv")
    r = cli("history", "import", late, now="2025-02-02", ok=False)
    assert "2024 is not before the first project call run in starfund (created in 2024)" \
        in r.output

