"""Call files that cannot work are refused, with every bad field named in one run.

Each setting below is valid on its own but impossible with the rest of the
file (a pass mark above the highest score, more reviews needed than experts
assigned, a cap the category's budget can never pay...). `call create` names
every bad field by its TOML path, one line each, exits 1 and writes nothing.
"""
from datetime import datetime
from pathlib import Path

import pytest
from worlds import EXAMPLE_CALL, STAR_CALL, call_file, refused

from lifecycle import kinds
from lifecycle.core import callconfig


def field_lines(cli, path: Path) -> list[str]:
    """Run `call create` on a bad file (refused, nothing written); its `field ...` lines."""
    out = refused(cli, "call", "create", path, now="2025-02-01")
    assert f"{path.name}: invalid call configuration" in out
    return [line.strip() for line in out.splitlines() if line.strip().startswith("field ")]


def test_three_bad_fields_are_all_named_in_one_run(cli, tmp_path):
    lines = field_lines(cli, call_file(tmp_path, {
        "review": {"pass_mark": 150, "min_reviews": 7},
        "categories": {4: {"cap": 600_000}}}, name="bad-call.toml"))
    assert len(lines) == 3, lines
    assert lines[0].startswith("field review.pass_mark: 150 is above the highest possible "
                               "score 100")
    assert lines[1].startswith("field review.min_reviews: 7 reviews needed but only "
                               "per_application = 5 experts")
    assert lines[2].startswith("field categories.5.cap: a project may ask for 600,000")
    assert "category capacity's budget is 500,000" in lines[2]


def test_field_errors_and_impossible_combinations_together(cli, tmp_path):
    """A type error, a range error and cross-field rules of the same sections, all at once."""
    lines = field_lines(cli, call_file(tmp_path, {
        "calendar": {"notice_days": 0, "review_due": datetime(2025, 4, 1, 17)},
        "review": {"pass_mark": 101, "per_application": "five", "max_load": 0},
        "workflow": "lottery",
    }, name="bad-call.toml"))
    joined = "\n".join(lines)
    for path in ("calendar.notice_days", "calendar.review_due", "review.pass_mark",
                 "review.per_application", "review.max_load", "workflow"):
        assert f"field {path}:" in joined, (path, lines)
    assert "unknown workflow 'lottery'" in joined
    # min_reviews is compared with per_application only when per_application itself is valid
    assert "review.min_reviews" not in joined
    assert len(lines) == 6, lines


def test_star_call_settings_named_together(cli, tmp_path):
    lines = field_lines(cli, call_file(tmp_path, {"star": {
        "thresholds": {"5": 1200}, "rewards": {"5": -5}, "capacities": {1: {"id": "innovation"}},
    }}, example="star", name="bad-star.toml"))
    joined = "\n".join(lines)
    assert "field star.capacities: capacity ids must be unique (innovation)" in joined
    assert "field star.thresholds: 5 stars = 1200 must be within 0..1000" in joined
    assert "field star.rewards.5: -5 is negative" in joined
    assert len(lines) == 3, lines


@pytest.mark.parametrize("patch, path, message", [
    ({"review": {"pass_mark": 100.5}}, "review.pass_mark",
     "above the highest possible score 100"),
    ({"review": {"min_reviews": 6}}, "review.min_reviews", "review could never start"),
    ({"categories": {0: {"cap": 950_000}}}, "categories.1.cap", "could never be funded"),
    ({"categories": {0: {"budget": 900_001}}}, "categories",
     "the category budgets add up to 3,000,001, more than budget_total 3,000,000"),
    ({"categories": {0: {"budget": None}}, "budget_total": 2_100_000}, "categories.1.budget",
     "category academic has no budget of its own"),
    ({"categories": {1: {"id": "academic"}}}, "categories.2.id",
     "category id 'academic' is used twice"),
    ({"criteria": {1: {"id": "content"}}}, "criteria.2.id",
     "criterion id 'content' is used twice"),
    ({"language": "fr"}, "language", "'fr' is not one of zh, en"),
    ({"calendar": {"notice_days": 0}}, "calendar.notice_days", "greater than or equal to 1"),
    ({"calendar": {"declaration_closes": datetime(2025, 3, 1, 17)}},
     "calendar.declaration_closes", "must be after declaration_opens"),
    ({"assessment": {"grades": {"优秀": 80}}}, "assessment.grades",
     "grades 优秀, 良好 share the bound 80"),
    ({"calendar": {"assessment_due": datetime(2025, 5, 1, 17)}},
     "calendar.assessment_due", "must be after review_due"),
])
def test_each_impossible_setting_names_its_field(tmp_path, patch, path, message):
    with pytest.raises(callconfig.ConfigError) as e:
        kinds.load(call_file(tmp_path, patch))
    lines = [line.strip() for line in str(e.value).splitlines()[1:]]
    assert any(line.startswith(f"field {path}:") and message in line for line in lines), lines


def test_a_project_call_without_any_criteria_is_refused(tmp_path):
    with pytest.raises(callconfig.ConfigError) as e:
        kinds.load(call_file(tmp_path, {"criteria": []}, name="no-criteria.toml"))
    assert "field criteria: no score criteria, and categories academic, policy" in str(e.value)


def test_a_star_call_without_star_levels_is_refused(tmp_path):
    with pytest.raises(callconfig.ConfigError) as e:
        kinds.load(call_file(tmp_path, {"star": {"thresholds": {
            "5": None, "4": None, "3": None, "2": None, "1": None}}}, example="star"))
    assert "field star.thresholds: no star level is defined" in str(e.value)


def test_the_examples_are_valid(cli):
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("call", "create", STAR_CALL, now="2025-02-01")
