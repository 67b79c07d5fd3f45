"""Score sheets: the blank sheet, wide and long imports, all-or-nothing refusals, audited
corrections."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openpyxl import Workbook, load_workbook
from worlds import (
    CALL,
    CRITERIA,
    ROOT,
    Cli,
    applications,
    assignments,
    call_file,
    eligible_call,
    experts,
    fingerprint,
    in_review,
    json_of,
    score,
    sheet_row,
    write_csv,
)


def reviews(cli, app: str) -> dict[str, dict]:
    return {r["expert"]: r for r in json_of(cli("show", app, "--json"))["reviews"]}


def test_blank_sheet_lists_the_experts_applications_and_round_trips(cli, tmp_path):
    got = in_review(cli, tmp_path)
    expert = got["A0001"][0]
    mine = sorted(a for a, xs in got.items() if expert in xs)
    out = tmp_path / "blank.xlsx"
    r = cli("review", "sheet", CALL, expert, "--out", out)
    assert f"{len(mine)} application(s) for {expert}" in r.output
    wb = load_workbook(out)
    ws = wb["scores"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:4] == ("expert_id", "application_id", "title", "category")
    assert list(rows[0][4:9]) == list(CRITERIA)
    assert [r[1] for r in rows[1:]] == mine
    assert [r[1] for r in wb["criteria"].iter_rows(values_only=True)][1:6] == list(CRITERIA)
    for i, _ in enumerate(mine, start=2):  # the expert fills it in
        for j, (_c, m) in enumerate(CRITERIA.items(), start=5):
            ws.cell(i, j, m * 0.9)
    wb.save(out)
    r = cli("review", "import", CALL, out, now="2025-04-20")
    assert f"{len(mine)} sheet(s) scored, 0 corrected" in r.output
    assert reviews(cli, mine[0])[expert]["total"] == 90.0


def test_long_layout_is_accepted(cli, tmp_path):
    got = in_review(cli, tmp_path)
    e = got["A0002"][0]
    rows = [{"expert_id": e, "application_id": "A0002", "criterion": c, "score": m * 0.5}
            for c, m in CRITERIA.items()]
    r = cli("review", "import", CALL, write_csv(tmp_path / "long.csv", rows), now="2025-04-20")
    assert "1 sheet(s) scored" in r.output
    rv = reviews(cli, "A0002")[e]
    assert rv["status"] == "submitted" and rv["total"] == 50.0
    assert rv["scores"] == {c: m * 0.5 for c, m in CRITERIA.items()}


def test_bad_sheet_is_refused_whole_with_rows_named(cli, tmp_path):
    got = in_review(cli, tmp_path)
    e1, e2, e3 = got["A0001"][0], got["A0001"][1], got["A0002"][0]
    stranger = next(x for x in ("E001", "E002", "E003", "E004", "E005", "E006")
                    if x not in got["A0003"])
    rows = [sheet_row(e1, "A0001", 80),                        # row 2 fine
            {**sheet_row(e2, "A0001", 80), "content": 31},      # row 3 over max
            sheet_row(stranger, "A0003", 70),                   # row 4 not assigned
            sheet_row(e1, "A0001", 60),                         # row 5 duplicate of row 2
            sheet_row("E999", "A0001", 60),                     # row 6 unknown expert
            {**sheet_row(e3, "A0002", 80), "team": ""}]         # row 7 missing score
    before = fingerprint(cli.db)
    path = write_csv(tmp_path / "bad.csv", rows)
    r = cli("review", "import", CALL, path, ok=False, now="2025-04-20")
    assert r.exit_code == 1 and "nothing was imported" in r.output
    assert f"{path}: row 3, column content: 31 outside 0..30" in r.output
    assert f"row 4, column application_id: expert {stranger} is not assigned to A0003" in r.output
    assert f"row 5: expert {e1}, application A0001 repeats row 2" in r.output
    assert "row 6, column expert_id: unknown expert 'E999'" in r.output
    assert f"row 7: expert {e3}, application A0002: missing criteria team" in r.output
    assert "row 2" not in r.output.replace("repeats row 2", "")
    assert fingerprint(cli.db) == before


def test_long_layout_missing_and_unknown_criteria(cli, tmp_path):
    got = in_review(cli, tmp_path)
    e = got["A0001"][0]
    rows = [{"expert_id": e, "application_id": "A0001", "criterion": c, "score": 5}
            for c in ("content", "method", "team", "impact")]
    before = fingerprint(cli.db)
    r = cli("review", "import", CALL, write_csv(tmp_path / "l.csv", rows), ok=False)
    assert r.exit_code == 1
    assert "row 5, column criterion: unknown criterion 'impact'" in r.output
    assert f"row 2: expert {e}, application A0001: missing criteria outputs, budget" in r.output
    assert fingerprint(cli.db) == before


def test_unknown_column_and_wrong_file_type(cli, tmp_path):
    got = in_review(cli, tmp_path)
    row = {**sheet_row(got["A0001"][0], "A0001", 80), "bonus": 3}
    r = cli("review", "import", CALL, write_csv(tmp_path / "x.csv", [row]), ok=False)
    assert r.exit_code == 1 and "header: unknown column 'bonus'" in r.output
    (tmp_path / "x.txt").write_text("nothing")
    r = cli("review", "import", CALL, tmp_path / "x.txt", ok=False)
    assert r.exit_code == 1 and "unsupported file type" in r.output


def test_correction_only_by_reimport_audited_with_old_and_new(cli, tmp_path):
    got = in_review(cli, tmp_path)
    e = got["A0001"][0]
    score(cli, tmp_path, {(e, "A0001"): 70, (e, "A0002") if e in got["A0002"] else
                          (got["A0002"][0], "A0002"): 75})
    r = score(cli, tmp_path, {(e, "A0001"): 90}, name="again.csv", now="2025-04-22")
    assert "0 sheet(s) scored, 1 corrected, 0 unchanged" in r.output
    assert reviews(cli, "A0001")[e]["total"] == 90.0
    ev = json_of(cli("audit", "query", "--call", CALL, "--trigger", "score_correct", "--json"))
    assert len(ev) == 1 and ev[0]["application_id"] == "A0001"
    p = ev[0]["payload"]
    assert p["expert"] == e and p["old_total"] == 70.0 and p["new_total"] == 90.0
    assert p["old"]["content"] == 21.0 and p["new"]["content"] == 27.0
    r = score(cli, tmp_path, {(e, "A0001"): 90}, name="same.csv", now="2025-04-23")
    assert "0 corrected, 1 unchanged" in r.output


def test_scores_are_refused_once_the_application_is_ranked(cli, tmp_path):
    got = in_review(cli, tmp_path, apps=applications(2, ("academic",)))
    score(cli, tmp_path, {(x, a): 85 for a, xs in got.items() for x in xs})
    cli("advance", CALL, "close_review", now="2025-05-07")
    cli("advance", CALL, "rank", now="2025-05-08")
    before = fingerprint(cli.db)
    r = score(cli, tmp_path, {(got["A0001"][0], "A0001"): 10}, name="late.csv", ok=False)
    assert r.exit_code == 1 and "A0001 is ranked; scores are accepted only" in r.output
    assert fingerprint(cli.db) == before


def test_xlsx_wide_sheet_with_criterion_names_as_headers(cli, tmp_path):
    got = in_review(cli, tmp_path)
    e = got["A0003"][0]
    wb = Workbook()
    ws = wb.active
    ws.append(["expert_id", "application_id", "内容与意义", "方法与可行性", "团队", "预期成果",
               "经费预算"])
    ws.append([e, "A0003", 30, 25, 15, 20, 10])
    wb.save(tmp_path / "names.xlsx")
    cli("review", "import", CALL, tmp_path / "names.xlsx", now="2025-04-20")
    assert reviews(cli, "A0003")[e]["total"] == 100.0


def test_two_processes_importing_at_once_never_lose_a_score(founded_pg_url, tmp_path):
    """Two real `starfund review import` processes, different experts' sheets, same call."""
    pg_url = founded_pg_url
    cli = Cli(pg_url)
    got = in_review(cli, tmp_path, experts(10), applications(30, ("academic",)), per=4)
    panel = sorted({x for xs in got.values() for x in xs})
    files = []
    for half, name in ((panel[0::2], "a.csv"), (panel[1::2], "b.csv")):
        rows = [sheet_row(x, a, 60 + (int(a[1:]) + int(x[1:])) % 40)
                for a, xs in sorted(got.items()) for x in xs if x in half]
        files.append(write_csv(tmp_path / name, rows))
    env = {**os.environ, "STARFUND_NOW": "2025-04-20T10:00", "STARFUND_ACTOR": "admin-test"}
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "--db", pg_url, "review", "import",
                               CALL, str(f)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    total = sum(len(xs) for xs in got.values())
    for a, xs in got.items():
        rv = reviews(cli, a)
        for x in xs:
            assert rv[x]["status"] == "submitted"
            assert rv[x]["total"] == 60 + (int(a[1:]) + int(x[1:])) % 40
    ev = json_of(cli("audit", "query", "--call", CALL, "--trigger", "score", "--limit", "0",
                     "--json"))
    assert len(ev) == total
    assert cli("audit", "verify").exit_code == 0
    assert Path(files[0]).exists()


def test_criteria_of_a_category_replace_the_calls(cli, tmp_path):
    path = call_file(tmp_path, {"categories": {1: {"criteria": [
        {"id": "value", "name": "决策价值", "max": 60, "weight": 60},
        {"id": "method", "name": "方法", "max": 40, "weight": 40}]}}})
    eligible_call(cli, tmp_path, experts(6),
                  applications(2, ("academic", "policy"), per_society=1), call=path)
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    got = assignments(cli)
    e = got["A0002"][0]
    out = tmp_path / "s.xlsx"
    cli("review", "sheet", CALL, e, "--out", out)
    header = next(load_workbook(out)["scores"].iter_rows(values_only=True))
    assert "value" in header and "method" in header
    policy = {"expert_id": e, "application_id": "A0002", "value": 45, "method": 40}
    wrong = {**policy, "team": 10}
    before = fingerprint(cli.db)
    r = cli("review", "import", CALL, write_csv(tmp_path / "w.csv", [wrong]), ok=False)
    assert r.exit_code == 1
    assert "row 2, column team: criterion 'team' is not scored in category policy" in r.output
    assert fingerprint(cli.db) == before
    over = {**policy, "method": 41}
    r = cli("review", "import", CALL, write_csv(tmp_path / "o.csv", [over]), ok=False)
    assert "row 2, column method: 41 outside 0..40" in r.output
    cli("review", "import", CALL, write_csv(tmp_path / "p.csv", [policy]), now="2025-04-20")
    assert reviews(cli, "A0002")[e]["total"] == 85.0  # 45/60*60 + 40/40*40
