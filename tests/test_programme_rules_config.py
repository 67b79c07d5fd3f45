"""The programme's own rules are call configuration: defaults keep today's single sheet, and a
file that cannot work is refused with every bad field named (classes, support, model rules)."""
from __future__ import annotations

from test_call_validation import field_lines
from worlds import call_config, call_file

from lifecycle import kinds
from lifecycle.core import callconfig


def test_defaults_keep_one_sheet_one_budget_no_support_and_no_model_societies():
    star = call_config(example="star")
    assert star.star.classes == [] and star.star.model.rules == []
    sheet = star.star.sheet_for("医科")
    assert sheet is not None and sheet.cls == "" and sheet.plain and sheet.pool is None
    assert sheet.maxima == {i: ind.max for i, (_, ind) in star.star.indicators().items()}
    project = call_config()
    assert project.classes == [] and project.support == []


def test_bad_class_settings_of_a_star_call_are_all_named(cli, tmp_path):
    lines = field_lines(cli, call_file(tmp_path, {"star": {
        "classes": [
            {"id": "医科", "maxima": {"IN1": 150, "XX9": 10}, "reward_share": 60,
             "thresholds": {"5": 700, "4": 800}},
            {"id": "工科", "weights": {"IN1": 90}, "reward_share": 30},
            {"id": "医科"}],
        "model": {"rules": [{"min_level": 6}, {"min_level": 4, "in_a_row": 0}]}}},
        example="star", name="bad-classes.toml"))
    joined = "\n".join(lines)
    for text in (
            "field star.classes.1.maxima: class 医科: unknown indicator(s) XX9",
            "field star.classes.1.maxima: class 医科: the indicators' maxima add up to 1050, "
            "not the scale 1000",
            "field star.classes.1.thresholds: class 医科: 5 stars (700) must need more than "
            "4 stars (800)",
            "field star.classes.2.weights: class 工科: the indicators' weights add up to 990, "
            "not the scale 1000",
            "field star.classes.3.id: class '医科' is listed twice",
            "field star.classes: class(es) 医科 have no reward_share while others do",
            "field star.model.rules.1.min_level: Input should be less than or equal to 5",
            "field star.model.rules.2.in_a_row: Input should be greater than or equal to 1"):
        assert text in joined, (text, lines)
    assert len(lines) == 8, lines


def test_bad_class_budgets_and_support_rules_of_a_project_call_are_all_named(cli, tmp_path):
    lines = field_lines(cli, call_file(tmp_path, {
        "classes": [{"id": "理科", "budget": 2_000_000, "categories": {"academic": 50_000,
                                                                      "sports": 10}},
                    {"id": "医科", "budget": 500_000}],
        "support": [{"id": "a", "earned_by": "grade", "grades": ["卓越"], "bonus": 3},
                    {"id": "b", "earned_by": "star", "extra_declarations": 1},
                    {"id": "c", "earned_by": "star", "min_level": 4,
                     "continue_without_competing": True},
                    {"id": "d", "earned_by": "grade"}],
        "star": {"classes": [{"id": "医科"}]}}, name="bad-project.toml"))
    joined = "\n".join(lines)
    for text in (
            "field classes: the class budgets add up to 2,500,000, not budget_total 3,000,000",
            "field categories.1.budget: category academic has a budget of its own, but the "
            "call divides its budget by class",
            "field classes.1.categories: class 理科: unknown category sports",
            "field classes.1.categories: class 理科: a academic project may ask for 100,000 "
            "(a grant of 100,000) but only 50,000 is there for it",
            "field star: a project call does not read [star]",
            "field support.1.grades: support rule a: 卓越 is not one of assessment.grades",
            "field support.2.min_level: support rule b is earned by a star: say which level",
            "field support.3.continue_without_competing: support rule c is earned by a star, "
            "but only an outstanding project can be continued",
            "field support.4: support rule d gives nothing"):
        assert text in joined, (text, lines)


def test_a_valid_file_with_every_new_section_loads(tmp_path):
    star = kinds.load(call_file(tmp_path, {"budget_total": 1_000_000, "star": {
        "classes": [{"id": "医科", "maxima": {"IN1": 120, "SG5": 30}, "weights": {"IN1": 100,
                                                                               "SG5": 50},
                     "thresholds": {"5": 880, "4": 780}, "reward_share": 40},
                    {"id": "工科", "reward_share": 60}],
        "model": {"validity_years": 3, "rules": [{"min_level": 5, "in_a_row": 2}]}}},
        example="star"))
    med = star.star.sheet_for("医科", star.budget_total)
    assert (med.maxima["IN1"], med.weights["IN1"], med.weights["SG5"], med.pool) == \
        (120, 100, 50, 400_000)
    assert med.total({"IN1": 60, "SG5": 15}) == 75.0  # half marks: half the weights
    assert med.level_of(790) == 4 and star.star.sheet_for("农科") is None  # pooled: not rated


def test_a_section_the_kind_of_call_does_not_read_is_refused_naming_it(cli, tmp_path):
    """Issue 31: a project call took a [star] table (with model rules) and ignored it."""
    lines = field_lines(cli, call_file(tmp_path, {"star": {
        "validity_years": 3, "model": {"rules": [{"min_level": 5}]}}}, name="project-star.toml"))
    assert lines == ['field star: a project call does not read [star] (only star calls do): '
                     'remove it, or set workflow = "star"'], lines
    lines = field_lines(cli, call_file(tmp_path, {
        "criteria": [{"id": "c", "name": "c", "max": 10, "weight": 10}],
        "assessment": {"scale": 100}, "support": [],
        "classes": [{"id": "医科", "budget": 4_000_000}]}, example="star", name="star-x.toml"))
    assert lines == [
        "field assessment: a star call does not read [assessment] (only project and grant "
        "calls do): remove it",
        "field classes: a star call does not read [classes] (only project calls do; a star call "
        'rates by class under star.classes): remove it, or set workflow = "project"',
        "field criteria: a star call does not read [criteria] (only project and grant calls "
        "do): remove it",
        "field support: a star call does not read [support] (only project calls do): remove "
        'it, or set workflow = "project"'], lines


def test_a_model_societies_table_without_a_rule_is_refused(cli, tmp_path):
    lines = field_lines(cli, call_file(tmp_path, {"star": {"model": {"validity_years": 3}}},
                                       example="star", name="no-rules.toml"))
    assert lines == ["field star.model.rules: [star.model] is written but has no rule: no "
                     "society could be named a model society; add [[star.model.rules]] or "
                     "remove [star.model]"], lines


def test_a_stored_call_holds_every_section_and_still_loads():
    """What `call create` stores is the full dump (every section, read or not): it is not a
    written file, and reading it back refuses nothing."""
    for example in ("project", "star"):
        dump = call_config(example=example).model_dump(mode="json")
        assert "star" in dump and "criteria" in dump and dump["star"]["model"]["rules"] == []
        assert callconfig.CallConfig.model_validate(dump).model_dump(mode="json") == dump
