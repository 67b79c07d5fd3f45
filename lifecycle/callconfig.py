"""A call's configuration: parsed from TOML, validated, with the programme's defaults.

Everything the programme leaves open (windows, expert counts, weights,
thresholds, amounts, notice length) lives here, never as a constant in code.
Validation errors name the file and the field.
"""
from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from functools import cached_property
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
    assessment_due: datetime | None = None
    """Final performance report due; required by project calls without assessment.checkpoints."""

    @model_validator(mode="after")
    def _ordered(self) -> "Calendar":
        if not self.declaration_opens < self.declaration_closes:
            raise ValueError("declaration_closes must be after declaration_opens")
        if not self.declaration_closes < self.review_due:
            raise ValueError("review_due must be after declaration_closes")
        if self.assessment_due is not None and not self.review_due < self.assessment_due:
            raise ValueError("assessment_due must be after review_due")
        return self


class Category(Strict):
    id: str
    name: str
    name_en: str = ""
    cap: int = Field(gt=0, description="the most one project of this category may request")
    budget: int | None = Field(None, gt=0, description="the category's share of the budget")
    criteria: list["Criterion"] = []
    """Score criteria of this category's applications; empty: the call's criteria."""


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
    objection_channel: str = "书面实名异议请寄送市科协学会工作部，并附证据材料"
    """How to file an objection, printed on the public notice."""


class Checkpoint(Strict):
    """One performance assessment of a funded project (中期检查, 结题验收), in order."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
    name: str
    name_en: str = ""
    report_due: datetime


class Assessment(Strict):
    scale: float = Field(100.0, gt=0)
    grades: dict[str, float] = {"优秀": 90, "良好": 80, "合格": 70}
    fail_grade: str = "不合格"
    continue_grades: list[str] = ["优秀", "良好"]
    adjust_grades: dict[str, float] = {"合格": 20.0}
    """Grade -> percent cut of the remaining grant."""
    bar_calls_after_failure: int = Field(2, ge=0)
    checkpoints: list[Checkpoint] = []
    """In order; empty: one final checkpoint ("final") due at calendar.assessment_due."""

    @model_validator(mode="after")
    def _grades(self) -> "Assessment":
        for name, bound in self.grades.items():
            if not 0 < bound <= self.scale:
                raise ValueError(f"grades: {name} = {bound:g} must be within 0..{self.scale:g}")
        if self.fail_grade in self.grades:
            raise ValueError(f"grades: the fail grade {self.fail_grade} takes what is below "
                             "the lowest bound and must not have a bound of its own")
        for name in list(self.continue_grades) + list(self.adjust_grades):
            if name not in self.grades:
                raise ValueError(f"grade {name} (continue_grades/adjust_grades) is not one of "
                                 f"grades ({', '.join(self.grades)})")
        both = set(self.continue_grades) & set(self.adjust_grades)
        if both:
            raise ValueError(f"grade {', '.join(sorted(both))} is both continued and adjusted")
        loose = [g for g in self.grades if g not in self.continue_grades
                 and g not in self.adjust_grades]
        if loose:
            raise ValueError(f"grade {', '.join(loose)} is neither in continue_grades nor in "
                             "adjust_grades: say what it leads to")
        for name, cut in self.adjust_grades.items():
            if not 0 < cut < 100:
                raise ValueError(f"adjust_grades: {name} = {cut:g} must be a percent cut "
                                 "between 0 and 100 (exclusive)")
        ids = [c.id for c in self.checkpoints]
        if len(set(ids)) != len(ids):
            raise ValueError("checkpoints: ids must be unique")
        dues = [c.report_due for c in self.checkpoints]
        if dues != sorted(dues):
            raise ValueError("checkpoints: report_due dates must be in checkpoint order")
        return self


class Instalment(Strict):
    """One part of a grant: paid once its condition (`release`) is met, on or after `due`."""

    label: str
    percent: float = Field(gt=0, le=100)
    release: str = "award"
    """"award" (when funded), a checkpoint id (when that checkpoint passes), or "completion"."""
    due: datetime | None = None
    """Earliest payment date; default: when released."""


class Payments(Strict):
    """The payment plan of every grant of the call."""

    mode: Literal["instalments", "after_completion"] = "instalments"
    instalments: list[Instalment] = [Instalment(label="全额 in full", percent=100)]
    recover_percent: float = Field(100.0, ge=0, le=100)
    """On termination: the percentage of the amount already paid that is to be recovered."""

    @model_validator(mode="after")
    def _whole(self) -> "Payments":
        if self.mode == "instalments":
            total = sum(i.percent for i in self.instalments)
            if abs(total - 100) > 1e-6:
                raise ValueError(f"instalments: percents add up to {total:g}, not 100")
        return self

    def plan(self) -> list[Instalment]:
        if self.mode == "after_completion":
            return [Instalment(label="结题后一次拨付 single payment after completion",
                               percent=100, release="completion")]
        return self.instalments


class Indicator(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    name: str
    name_en: str = ""
    max: float = Field(gt=0)


class Capacity(Strict):
    """One of the four capacities a society is judged on, with its indicators."""

    id: str
    name: str
    name_en: str = ""
    indicators: list[Indicator] = Field(min_length=1)


def _default_sheet() -> list[Capacity]:
    rows = {
        ("innovation", "服务创新", "Serving innovation"): [
            ("IN1", "学术交流", "Academic exchange", 100),
            ("IN2", "品牌学术会议", "Brand conferences", 80),
            ("IN3", "科研诚信与学风建设", "Research integrity", 40),
            ("IN4", "国内外组织任职与影响", "Roles in national and international bodies", 60)],
        ("society", "服务社会和政府", "Serving society and government"): [
            ("SG1", "决策咨询", "Policy advice (think tank)", 80),
            ("SG2", "承接政府转移职能", "Work entrusted by government", 60),
            ("SG3", "科技评价与奖励", "S&T evaluation and awards", 40),
            ("SG4", "团体标准", "Standards", 30),
            ("SG5", "科学普及", "Popularisation of science", 50)],
        ("workers", "服务科技工作者", "Serving S&T workers"): [
            ("SW1", "会员服务", "Member services", 60),
            ("SW2", "人才举荐", "Talent recommendation", 60),
            ("SW3", "表彰奖励", "Recognition", 30),
            ("SW4", "专业水平评价", "Professional certification", 30),
            ("SW5", "青年人才", "Young talent", 40)],
        ("development", "学会自我发展", "Self-development"): [
            ("SD1", "民主办会与治理", "Democratic governance", 80),
            ("SD2", "党建工作", "Party organisation", 60),
            ("SD3", "会员管理", "Membership management", 50),
            ("SD4", "专职人员队伍", "Professional staff", 50)],
    }
    return [Capacity(id=c, name=n, name_en=e, indicators=[
        Indicator(id=i, name=iname, name_en=ie, max=m) for i, iname, ie, m in inds])
        for (c, n, e), inds in rows.items()]


class Star(Strict):
    """The star rating (星级学会, 以奖代补): indicator sheet, thresholds, rewards, validity."""

    scale: float = Field(1000.0, gt=0)
    thresholds: dict[int, float] = {5: 900, 4: 800, 3: 700, 2: 600, 1: 500}
    """Star level -> lowest total for it."""
    rewards: dict[int, int] = {5: 200_000, 4: 150_000, 3: 100_000, 2: 60_000, 1: 30_000}
    """Star level -> reward in yuan, paid once when the star is awarded."""
    validity_years: int = Field(2, ge=1, le=10)
    min_experts: int = Field(3, ge=1)
    expert_weight: float = Field(0.5, ge=0, le=1)
    """Each indicator's final score: checked * (1 - w) + mean of the experts' scores * w."""
    bar_calls_after_revocation: int = Field(1, ge=0)
    """A star revoked for a failed inspection or a penalty bars the next star calls."""
    capacities: list[Capacity] = Field(default_factory=_default_sheet, min_length=1)

    @model_validator(mode="after")
    def _sheet(self) -> "Star":
        ids = [i.id for c in self.capacities for i in c.indicators]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"capacities: indicator ids must be unique ({', '.join(dup)})")
        total = sum(i.max for c in self.capacities for i in c.indicators)
        if abs(total - self.scale) > 1e-6:
            raise ValueError(f"capacities: the indicators' maxima add up to {total:g}, "
                             f"not the scale {self.scale:g}")
        bad = [lv for lv in self.thresholds if not 1 <= lv <= 5]
        if bad:
            raise ValueError(f"thresholds: star levels are 1 to 5, got {bad}")
        ordered = sorted(self.thresholds.items())
        for (lo, a), (hi, b) in zip(ordered, ordered[1:]):
            if not a < b:
                raise ValueError(f"thresholds: {hi} stars ({b:g}) must need more than "
                                 f"{lo} stars ({a:g})")
        if any(not 0 < v <= self.scale for v in self.thresholds.values()):
            raise ValueError(f"thresholds: each must be within 0..{self.scale:g}")
        missing = sorted(set(self.thresholds) - set(self.rewards))
        if missing:
            raise ValueError(f"rewards: no reward for {missing} star(s)")
        return self

    def indicators(self) -> dict[str, tuple[Capacity, Indicator]]:
        return {i.id: (c, i) for c in self.capacities for i in c.indicators}

    def level_of(self, total: float) -> int:
        """The star level a total reaches (0: none)."""
        return max((lv for lv, bound in self.thresholds.items() if total >= bound), default=0)


class Reminders(Strict):
    """Days before each deadline kind that reminders go out (fractions allowed: 0.5 = 12 hours).

    Reminders go only to those who still have something to do: societies with
    drafts (declaration_closes), experts with missing scores (reviews_due),
    societies whose report is due (report_due).
    """

    declaration_closes: list[float] = [7, 3, 1]
    reviews_due: list[float] = [3, 1]
    report_due: list[float] = [14, 3]

    @model_validator(mode="after")
    def _positive(self) -> "Reminders":
        for kind in ("declaration_closes", "reviews_due", "report_due"):
            bad = [d for d in getattr(self, kind) if not 0 < d <= 366]
            if bad:
                raise ValueError(f"{kind}: days before the deadline must be between 0 and 366 "
                                 f"(exclusive of 0), got {bad}")
        return self


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
    payments: Payments = Payments()
    star: Star = Field(default_factory=Star)
    eligibility: Eligibility = Eligibility()
    reminders: Reminders = Reminders()
    extra: dict[str, Any] = {}
    """Settings of later stages and other workflows (kept as given)."""

    @model_validator(mode="before")
    @classmethod
    def _star_category(cls, data: Any) -> Any:
        """A star call rates whole societies: one implicit category unless the file names one."""
        if isinstance(data, dict) and data.get("workflow") == "star" and "categories" not in data:
            data = {**data, "categories": [{"id": "star", "name": "星级学会评定",
                                            "name_en": "Star rating", "cap": 10_000_000}]}
        return data

    def checkpoints(self) -> list[Checkpoint]:
        """The assessment checkpoints in order (the default: one final one)."""
        if self.assessment.checkpoints:
            return self.assessment.checkpoints
        due = self.calendar.assessment_due
        return [Checkpoint(id="final", name="结题验收", name_en="Final acceptance",
                           report_due=due)] if due else []

    @model_validator(mode="after")
    def _assessment_plan(self) -> "CallConfig":
        if self.workflow != "project":
            return self
        if not self.checkpoints():
            raise ValueError("calendar.assessment_due: required for a project call without "
                             "assessment.checkpoints")
        if self.checkpoints()[0].report_due <= self.calendar.review_due:
            raise ValueError("assessment.checkpoints: the first report_due must be after "
                             "calendar.review_due")
        known = {"award", "completion"} | {c.id for c in self.checkpoints()}
        for n, inst in enumerate(self.payments.plan(), start=1):
            if inst.release not in known:
                raise ValueError(f"payments.instalments.{n}.release: {inst.release!r} is not "
                                 f"one of {', '.join(sorted(known))}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "CallConfig":
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError("categories: category ids must be unique")
        for c in [None, *self.categories]:
            crit = [x.id for x in (c.criteria if c is not None else self.criteria)]
            if len(set(crit)) != len(crit):
                where = f"categories.{c.id}.criteria" if c is not None else "criteria"
                raise ValueError(f"{where}: criterion ids must be unique")
        budgets = sum(c.budget or 0 for c in self.categories)
        if budgets > self.budget_total:
            raise ValueError(f"categories: category budgets ({budgets}) exceed budget_total "
                             f"({self.budget_total})")
        return self

    @cached_property
    def categories_by_id(self) -> dict[str, Category]:
        return {c.id: c for c in self.categories}

    def category(self, category_id: str) -> Category | None:
        """Looked up once per application in a batch, so by dict, not by scanning the list."""
        return self.categories_by_id.get(category_id)

    def criteria_for(self, category_id: str) -> list[Criterion]:
        """The criteria experts score applications of a category on (its own, else the call's)."""
        category = self.category(category_id)
        return category.criteria if category is not None and category.criteria else self.criteria

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
