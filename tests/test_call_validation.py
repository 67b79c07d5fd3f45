"""Call files that cannot work are refused, with every bad field named in one run.

Each setting below is valid on its own but impossible with the rest of the
file (a pass mark above the highest score, more reviews needed than experts
assigned, a cap the category's budget can never pay...). `call create` names
every bad field by its TOML path, one line each, exits 1 and writes nothing.
"""
from pathlib import Path

import pytest
from conftest import EXAMPLE_CALL, fingerprint

from lifecycle.core import callconfig

STAR_CALL = EXAMPLE_CALL.parent / "star-call.toml"


def edited(tmp_path: Path, replace: dict[str, str], source: Path = EXAMPLE_CALL,
           name: str = "bad-call.toml") -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(cli, path: Path) -> list[str]:
    """Run `call create` on a bad file; returns its `field ...` lines."""
    before = fingerprint(cli.db)
    r = cli("call", "create", path, ok=False, now="2025-02-01")
    assert r.exit_code == 1, r.output
    assert fingerprint(cli.db) == before, "a refused call file changed the database"
    assert f"{path.name}: invalid call configuration" in r.output
    return [line.strip() for line in r.output.splitlines() if line.strip().startswith("field ")]


def test_three_bad_fields_are_all_named_in_one_run(cli, tmp_path):
    lines = refused(cli, edited(tmp_path, {
        "pass_mark = 80 ": "pass_mark = 150 ",
        "min_reviews = 3 ": "min_reviews = 7 ",
        "cap = 30_000": "cap = 600_000"}))
    assert len(lines) == 3, lines
    assert lines[0].startswith("field review.pass_mark: 150 is above the highest possible "
                               "score 100")
    assert lines[1].startswith("field review.min_reviews: 7 reviews needed but only "
                               "per_application = 5 experts")
    assert lines[2].startswith("field categories.5.cap: a project may ask for 600,000")
    assert "category capacity's budget is 500,000" in lines[2]


def test_field_errors_and_impossible_combinations_together(cli, tmp_path):
    """A type error, a range error and cross-field rules of the same sections, all at once."""
    lines = refused(cli, edited(tmp_path, {
        "notice_days = 7 ": "notice_days = 0 ",
        "review_due = 2025-05-06T17:00:00": "review_due = 2025-04-01T17:00:00",
        "pass_mark = 80 ": "pass_mark = 101 ",
        "per_application = 5 ": 'per_application = "five" ',
        "drop_extremes_from = 5 ": "drop_extremes_from = 5\nmax_load = 0",
        'workflow = "project"': 'workflow = "lottery"',
    }))
    joined = "\n".join(lines)
    for path in ("calendar.notice_days", "calendar.review_due", "review.pass_mark",
                 "review.per_application", "review.max_load", "workflow"):
        assert f"field {path}:" in joined, (path, lines)
    assert "unknown workflow 'lottery'" in joined
    # min_reviews is compared with per_application only when per_application itself is valid
    assert "review.min_reviews" not in joined
    assert len(lines) == 6, lines


def test_star_call_settings_named_together(cli, tmp_path):
    lines = refused(cli, edited(tmp_path, {
        "thresholds = { 5 = 900, 4 = 800": "thresholds = { 5 = 1200, 4 = 800",
        "rewards = { 5 = 200_000,": "rewards = { 5 = -5,",
        'id = "society"': 'id = "innovation"',
    }, source=STAR_CALL, name="bad-star.toml"))
    joined = "\n".join(lines)
    assert "field star.capacities: capacity ids must be unique (innovation)" in joined
    assert "field star.thresholds: 5 stars = 1200 must be within 0..1000" in joined
    assert "field star.rewards.5: -5 is negative" in joined
    assert len(lines) == 3, lines


@pytest.mark.parametrize("replace, path, message", [
    ({"pass_mark = 80 ": "pass_mark = 100.5 "}, "review.pass_mark",
     "above the highest possible score 100"),
    ({"min_reviews = 3 ": "min_reviews = 6 "}, "review.min_reviews",
     "review could never start"),
    ({"cap = 100_000\nbudget = 900_000": "cap = 950_000\nbudget = 900_000"}, "categories.1.cap",
     "could never be funded"),
    ({"budget = 900_000": "budget = 900_001"}, "categories",
     "the category budgets add up to 3,000,001, more than budget_total 3,000,000"),
    ({"cap = 100_000\nbudget = 900_000\n": "cap = 100_000\n",
      "budget_total = 3_000_000": "budget_total = 2_100_000"}, "categories.1.budget",
     "category academic has no budget of its own"),
    ({'id = "policy"': 'id = "academic"'}, "categories.2.id",
     "category id 'academic' is used twice"),
    ({'id = "method"': 'id = "content"'}, "criteria.2.id", "criterion id 'content' is used twice"),
    ({'language = "zh"': 'language = "fr"'}, "language", "'fr' is not one of zh, en"),
    ({'notice_days = 7 ': 'notice_days = 0 '}, "calendar.notice_days", "greater than or equal to 1"),
    ({'declaration_closes = 2025-04-07T17:00:00': 'declaration_closes = 2025-03-01T17:00:00'},
     "calendar.declaration_closes", "must be after declaration_opens"),
    ({'grades = { "优秀" = 90, "良好" = 80': 'grades = { "优秀" = 80, "良好" = 80'},
     "assessment.grades", "grades 优秀, 良好 share the bound 80"),
    ({'assessment_due = 2025-12-15T17:00:00': 'assessment_due = 2025-05-01T17:00:00'},
     "calendar.assessment_due", "must be after review_due"),
])
def test_each_impossible_setting_names_its_field(tmp_path, replace, path, message):
    with pytest.raises(callconfig.ConfigError) as e:
        callconfig.load(edited(tmp_path, replace))
    lines = [line.strip() for line in str(e.value).splitlines()[1:]]
    assert any(line.startswith(f"field {path}:") and message in line for line in lines), lines


def test_a_project_call_without_any_criteria_is_refused(tmp_path):
    text = EXAMPLE_CALL.read_text(encoding="utf-8")
    text = text[:text.index("[[criteria]]")] + text[text.index("[review]"):]
    text = text.replace("budget_total = 3_000_000", "budget_total = 3_000_000\ncriteria = []")
    path = tmp_path / "no-criteria.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(callconfig.ConfigError) as e:
        callconfig.load(path)
    assert "field criteria: no score criteria, and categories academic, policy" in str(e.value)


def test_a_star_call_without_star_levels_is_refused(tmp_path):
    with pytest.raises(callconfig.ConfigError) as e:
        callconfig.load(edited(tmp_path, {
            "thresholds = { 5 = 900, 4 = 800, 3 = 700, 2 = 600, 1 = 500 }": "thresholds = {}"},
            source=STAR_CALL))
    assert "field star.thresholds: no star level is defined" in str(e.value)


def test_the_examples_are_valid(cli):
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("call", "create", STAR_CALL, now="2025-02-01")
