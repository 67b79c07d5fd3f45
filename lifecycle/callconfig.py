"""A call's configuration: parsed from TOML, validated, with the programme's defaults.

Everything the programme leaves open (windows, expert counts, weights,
thresholds, amounts, notice length) lives here, never as a constant in code.
Validation errors name the file and the field.
"""
from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Calendar(Strict):
    declaration_opens: datetime
    declaration_closes: datetime
    review_due: datetime
    notice_days: int = Field(7, ge=1, le=60)
    notice_working_days: bool = False
    holidays: list[date] = []
    assessment_due: datetime

    @model_validator(mode="after")
    def _ordered(self) -> "Calendar":
        if not self.declaration_opens < self.declaration_closes:
            raise ValueError("declaration_closes must be after declaration_opens")
        if not self.declaration_closes < self.review_due:
            raise ValueError("review_due must be after declaration_closes")
        if not self.review_due < self.assessment_due:
            raise ValueError("assessment_due must be after review_due")
        return self


class Category(Strict):
    id: str
    name: str
    name_en: str = ""
    cap: int = Field(gt=0, description="the most one project of this category may request")
    budget: int | None = Field(None, gt=0, description="the category's share of the budget")


class Criterion(Strict):
    id: str
    name: str
    name_en: str = ""
    max: float = Field(gt=0)
    weight: float = Field(gt=0)


class Review(Strict):
    min_reviews: int = Field(3, ge=1)
    per_application: int = Field(5, ge=1)
    max_load: int | None = Field(None, ge=1)
    drop_extremes_from: int = Field(5, ge=3)
    normalise: bool = False
    spread_flag: float = Field(30.0, gt=0)
    pass_mark: float = Field(80.0, ge=0)
    grant_percent: float = Field(100.0, gt=0, le=100)
    move_leftover: bool = False
    normalise_min_reviews: int = Field(3, ge=2)
    """Experts with fewer reviews in the call keep their raw totals when normalising."""
    upheld_objection: Literal["reject", "review"] = "reject"
    """Where an application goes when an objection against it is upheld."""


class Assessment(Strict):
    scale: float = Field(100.0, gt=0)
    grades: dict[str, float] = {"优秀": 90, "良好": 80, "合格": 70}
    fail_grade: str = "不合格"
    continue_grades: list[str] = ["优秀", "良好"]
    adjust_grades: dict[str, float] = {"合格": 20.0}
    """Grade -> percent cut of the remaining grant."""
    bar_calls_after_failure: int = Field(2, ge=0)


class Eligibility(Strict):
    required_fields: list[str] = ["title", "summary"]
    one_per_society_per_category: bool = True


def _default_criteria() -> list[Criterion]:
    rows = [("content", "内容与意义", "Content and significance", 30),
            ("method", "方法与可行性", "Method and feasibility", 25),
            ("team", "团队", "Team", 15),
            ("outputs", "预期成果", "Expected outputs", 20),
            ("budget", "经费预算", "Budget", 10)]
    return [Criterion(id=i, name=n, name_en=e, max=w, weight=w) for i, n, e, w in rows]


class CallConfig(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    title: str
    title_en: str = ""
    workflow: str = "project"
    language: str = "zh"
    calendar: Calendar
    budget_total: int = Field(gt=0)
    categories: list[Category] = Field(min_length=1)
    criteria: list[Criterion] = Field(default_factory=_default_criteria)
    review: Review = Review()
    assessment: Assessment = Assessment()
    eligibility: Eligibility = Eligibility()
    extra: dict[str, Any] = {}
    """Settings of later stages and other workflows (kept as given)."""

    @model_validator(mode="after")
    def _consistent(self) -> "CallConfig":
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError("categories: category ids must be unique")
        budgets = sum(c.budget or 0 for c in self.categories)
        if budgets > self.budget_total:
            raise ValueError(f"categories: category budgets ({budgets}) exceed budget_total "
                             f"({self.budget_total})")
        return self

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def notice_end(self, start: datetime) -> datetime:
        """When a notice opened at `start` ends: calendar days, or working days skipping holidays."""
        if not self.calendar.notice_working_days:
            return datetime.combine((start + timedelta(days=self.calendar.notice_days)).date(),
                                    time())
        day, left = start.date(), self.calendar.notice_days
        holidays = set(self.calendar.holidays)
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5 and day not in holidays:
                left -= 1
        return datetime.combine(day + timedelta(days=1), time())


class ConfigError(ValueError):
    """A call file that cannot be used; the message names the file and every bad field."""


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid call configuration"]
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  field {where}: {e['msg']}")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<call>") -> CallConfig:
    try:
        return CallConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def load(path: str | Path) -> CallConfig:
    """Read and validate a call TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return from_dict(data, str(path))
