"""Grades: every boundary of the scale, configurable scales, and imports refused whole."""
from __future__ import annotations

import pytest
from worlds import (
    app_state,
    audit_events,
    call_file,
    funded_project_call,
    grade_file,
    json_of,
    people,
    write_csv,
)

from lifecycle import kinds
from lifecycle.core import callconfig
from lifecycle.rules.grades import grade_of, proposal_of


@pytest.fixture(scope="module")
def default_call(tmp_path_factory) -> callconfig.CallConfig:
    return kinds.load(call_file(tmp_path_factory.mktemp("g")))


@pytest.mark.parametrize("score, grade, outcome", [
    (100, "优秀", "continue"), (90, "优秀", "continue"), (89.99, "良好", "continue"),
    (80, "良好", "continue"), (79.99, "合格", "adjust -20%"), (70, "合格", "adjust -20%"),
    (69.99, "不合格", "terminate"), (0, "不合格", "terminate")])
def test_every_boundary_of_the_default_scale(default_call, score, grade, outcome):
    assert grade_of(default_call, score) == grade
    assert proposal_of(default_call, grade) == outcome


def test_a_configured_scale_moves_the_boundaries(tmp_path):
    call = kinds.load(call_file(tmp_path, {"assessment": {
        "grades": {"优秀": None, "良好": None, "合格": None, "A": 135, "B": 105},
        "continue_grades": ["A"], "adjust_grades": {"合格": None, "B": 50}, "fail_grade": "F",
        "scale": 150}}))
    assert [grade_of(call, s) for s in (150, 135, 134.9, 105, 104.9, 0)] == \
        ["A", "A", "B", "B", "F", "F"]
    assert proposal_of(call, "B") == "adjust -50%"


@pytest.mark.parametrize("patch, message", [
    ({"assessment": {"grades": {"优秀": 120}}}, "优秀 = 120 must be within 0..100"),
    ({"assessment": {"continue_grades": ["优秀"]}},
     "grade 良好 is neither in continue_grades nor in adjust_grades"),
    ({"assessment": {"adjust_grades": {"合格": 120}}},
     "adjust_grades: 合格 = 120 must be a percent cut"),
    ({"payments": {"instalments": {2: {"percent": 25}}}},
     "instalments: percents add up to 105, not 100"),
    ({"payments": {"instalments": {1: {"release": "halfway"}}}},
     "payments.instalments.2.release: 'halfway' is not one of award, completion, final, midterm"),
])
def test_bad_assessment_settings_are_refused_naming_the_field(tmp_path, patch, message):
    with pytest.raises(callconfig.ConfigError) as e:
        kinds.load(call_file(tmp_path, patch, checkpoints=True))
    assert message in str(e.value)


def test_a_bad_call_file_is_refused_by_the_cli(cli, tmp_path):
    r = cli("call", "create", call_file(tmp_path, {
        "payments": {"instalments": {1: {"release": "halfway"}}}}, checkpoints=True), ok=False)
    assert r.exit_code == 1
    assert "payments.instalments.2.release: 'halfway' is not one of award, completion, final, " \
        "midterm" in r.output
    assert json_of(cli("call", "list", "--json")) == []


def _graded_world(cli, tmp_path):
    people(cli, tmp_path, n_societies=4, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S003", "S004"],
                                     call_file(tmp_path, checkpoints=True))
    cli("advance", call_id, "open_assessment", now="2025-06-01")
    return call_id


def test_a_bad_grade_file_is_refused_whole_with_rows_named(cli, tmp_path):
    call_id = _graded_world(cli, tmp_path)
    before = len(audit_events(cli))
    path = write_csv(tmp_path / "bad.csv", [
        {"application_id": f"{call_id}-S001", "score": "88", "grader": "E1"},
        {"application_id": f"{call_id}-S002", "score": "101", "grader": "E1"},
        {"application_id": "nope", "score": "70", "grader": "E1"},
        {"application_id": f"{call_id}-S003", "score": "abc", "grader": "E1"},
        {"application_id": f"{call_id}-S001", "score": "80", "grader": "E1"}])
    r = cli("assessment", "grades", call_id, path, now="2025-09-20", ok=False)
    assert r.exit_code == 1
    assert "refused, nothing was imported" in r.output
    assert "row 5, column score: 'abc' is not valid" in r.output
    path = write_csv(tmp_path / "bad2.csv", [
        {"application_id": f"{call_id}-S001", "score": "88", "grader": "E1"},
        {"application_id": f"{call_id}-S002", "score": "101", "grader": "E1"},
        {"application_id": "nope", "score": "70", "grader": "E1"},
        {"application_id": f"{call_id}-S001", "score": "80", "grader": "E1"}])
    r = cli("assessment", "grades", call_id, path, now="2025-09-20", ok=False)
    assert r.exit_code == 1
    assert "row 3, column score: 101 is outside 0..100" in r.output
    assert "row 4, column application_id: no application 'nope'" in r.output
    assert "row 5, column grader: E1 already graded" in r.output
    assert len(audit_events(cli)) == before
    assert app_state(cli, f"{call_id}-S001")["application"]["assessment_score"] is None


def test_graders_are_averaged_and_a_regrade_is_audited_with_the_old(cli, tmp_path):
    call_id = _graded_world(cli, tmp_path)
    a = f"{call_id}-S001"
    cli("assessment", "grades", call_id, write_csv(tmp_path / "g.csv", [
        {"application_id": a, "score": 92, "grader": "E001"},
        {"application_id": a, "score": 86, "grader": "E002"}]), now="2025-09-20")
    assert app_state(cli, a)["application"]["assessment_score"] == 89.0
    assert app_state(cli, a)["application"]["assessment_grade"] == "良好"
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g2.csv", {a: 90}),
        now="2025-09-21")
    shown = app_state(cli, a)
    assert shown["assessments"][0]["grade"] == "优秀"
    grades = [e["payload"] for e in audit_events(cli, application=a, trigger="grade")]
    assert grades[-1]["old"] == {"score": 89.0, "grade": "良好"}
    assert grades[-1]["proposes"] == "continue"


def test_grades_only_for_projects_awaiting_assessment(cli, tmp_path):
    call_id = _graded_world(cli, tmp_path)
    a = f"{call_id}-S001"
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g.csv", {a: 90}),
        now="2025-09-20")
    cli("advance", call_id, "assess", "--only", a, now="2025-09-20")
    r = cli("assessment", "grades", call_id, grade_file(tmp_path, "g2.csv", {a: 50}),
            now="2025-09-21", ok=False)
    assert r.exit_code == 1 and f"{a} is assessed, not awaiting assessment" in r.output


def test_report_needs_an_open_checkpoint_and_a_real_file(cli, tmp_path):
    call_id = _graded_world(cli, tmp_path)
    a = f"{call_id}-S001"
    r = cli("assessment", "report", a, "--file", tmp_path / "missing.pdf", ok=False)
    assert r.exit_code == 1 and "no such file" in r.output
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    r = cli("assessment", "report", a, "--file", empty, ok=False)
    assert r.exit_code == 1 and "the report is empty" in r.output
    good = tmp_path / "r.docx"
    good.write_bytes(b"report v1")
    cli("assessment", "report", a, "--file", good, now="2025-09-01")
    good.write_bytes(b"report v2, corrected")
    cli("assessment", "report", a, "--file", good, now="2025-09-02")
    rec = app_state(cli, a)["assessments"][0]
    assert rec["bytes"] == len(b"report v2, corrected") and rec["late"] is False
    events = audit_events(cli, application=a, trigger="assessment_report")
    assert len(events) == 2 and events[1]["payload"]["replaces"] == events[0]["payload"]["sha256"]
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g.csv", {a: 90}),
        now="2025-09-20")
    cli("advance", call_id, "assess", "--only", a, now="2025-09-20")
    r = cli("assessment", "report", a, "--file", good, ok=False)
    assert r.exit_code == 1 and "not awaiting a performance report" in r.output
