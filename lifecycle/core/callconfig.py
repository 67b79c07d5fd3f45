"""A call's configuration: parsed from TOML, validated, with the programme's defaults.

Everything the programme leaves open (windows, expert counts, weights,
thresholds, amounts, notice length) lives here, never as a constant in code.

A file that cannot work is refused with every bad field named, one line each,
by its TOML path (`review.pass_mark`, `categories.2.cap`: list items count
from 1). Beside each field's own type and range, each model has cross-field
rules (`_rules`): settings that are each valid but together make a stage
impossible (a pass mark above the highest possible score, fewer experts per
application than the reviews review needs, a category cap its budget can never
pay...). The rules run even when other fields are bad, skipping only the rules
that read a bad field, so one run names every problem.
"""
from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from lifecycle.core.errors import UserError
from lifecycle.core.workdays import Workdays

SCORE_SCALE = 100.0
"""An expert's total: the criteria's scores weighted to this many points (lifecycle.rules.ranking)."""
LANGUAGES = ("zh", "en")
"""Languages of the notification templates (and of societies and experts, lifecycle.acts.registry)."""

Loc = tuple[str | int, ...]


def _error(loc: Loc, kind: str, message: str, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": message}),
                            loc=loc, input=value)


class _Say:
    """Collects the problems a model's `_rules` find, each at its field path (relative)."""

    def __init__(self, bad: set[str], context: dict[str, Any] | None) -> None:
        self.bad, self.context = bad, context or {}
        self.found: list[InitErrorDetails] = []

    def usable(self, *fields: str) -> bool:
        """True when none of these fields of the model failed its own validation."""
        return not self.bad.intersection(fields)

    def __call__(self, loc: str | Loc, message: str, value: Any = None) -> None:
        where = tuple(loc.split(".")) if isinstance(loc, str) else loc
        self.found.append(_error(where, "call_config", message, value))


@cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    field = model.model_fields[name]
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[field.annotation, *field.metadata])  # type: ignore[misc]


class Strict(BaseModel):
    """A section of the call file: unknown keys refused, cross-field rules run on every parse."""

    model_config = ConfigDict(extra="forbid")

    def _rules(self, say: _Say) -> None:
        """Cross-field checks; report with `say(field, message)`, guard with `say.usable(...)`."""

    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Fill in what the raw data implies before validation (see CallConfig)."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _validate_all(cls, data: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        data = cls._prepare(data)
        try:
            model = handler(data)
        except ValidationError as e:
            errors = [_error(x["loc"], x["type"], x["msg"], x.get("input")) for x in e.errors()]
            partial, bad = cls._partial(data, info.context)
            if partial is not None:
                say = _Say(bad, info.context)
                partial._rules(say)
                errors += say.found
            raise ValidationError.from_exception_data(cls.__name__, errors) from None
        if isinstance(data, BaseModel):
            return model  # an instance already checked when it was made
        say = _Say(set(), info.context)
        model._rules(say)
        if say.found:
            raise ValidationError.from_exception_data(cls.__name__, say.found)
        return model

    @classmethod
    def _partial(cls, data: Any, context: Any) -> tuple[Strict | None, set[str]]:
        """The fields that validate on their own (the rest at their defaults) and the bad ones."""
        if not isinstance(data, dict):
            return None, set()
        good: dict[str, Any] = {}
        bad: set[str] = set()
        for name, field in cls.model_fields.items():
            if name not in data:
                if field.is_required():
                    bad.add(name)
                continue
            try:
                good[name] = _adapter(cls, name).validate_python(data[name], context=context)
            except ValidationError:
                bad.add(name)
        return cls.model_construct(**good), bad


class Calendar(Strict):
    declaration_opens: datetime
    declaration_closes: datetime
    review_due: datetime
    notice_days: int = Field(7, ge=1, le=60)
    notice_working_days: bool = False
    """Count the notice in working days as China counts them (lifecycle.core.workdays)."""
    holidays: list[date] = []
    """Local days off on top of the official calendar."""
    working_days: list[date] = []
    """Local working days on top of the official calendar."""
    listed_years: list[int] = []
    """Years whose days off and make-up working days the call lists itself in holidays and
    working_days (Monday to Friday otherwise), for years the installed calendar does not cover."""
    assessment_due: datetime | None = None
    """Final performance report due; required by project calls without assessment.checkpoints."""

    def _rules(self, say: _Say) -> None:
        order = [("declaration_opens", "declaration_closes"), ("declaration_closes", "review_due"),
                 ("review_due", "assessment_due")]
        for before, after in order:
            if not say.usable(before, after) or getattr(self, after) is None:
                continue
            if not getattr(self, before) < getattr(self, after):
                say(after, f"{getattr(self, after)} must be after {before} "
                           f"({getattr(self, before)}): the window would end before it starts",
                    str(getattr(self, after)))
        if say.usable("holidays", "working_days"):
            both = sorted(set(self.holidays) & set(self.working_days))
            if both:
                say("working_days", f"{', '.join(map(str, both))} listed both as a day off "
                                    "(holidays) and as a working day", [str(d) for d in both])

    def workdays(self) -> Workdays:
        return Workdays.of(self.holidays, self.working_days, self.listed_years)


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
    """Submitted reviews an application needs to leave review (and experts to enter it)."""
    per_application: int = Field(5, ge=1)
    max_load: int | None = Field(None, ge=1)
    drop_extremes_from: int = Field(5, ge=3)
    normalise: bool = False
    spread_flag: float = Field(30.0, gt=0)
    pass_mark: float = Field(80.0, ge=0)
    """Out of SCORE_SCALE (100) points."""
    grant_percent: float = Field(100.0, gt=0, le=100)
    move_leftover: bool = False
    normalise_min_reviews: int = Field(3, ge=2)
    """Experts with fewer reviews in the call keep their raw totals when normalising."""
    upheld_objection: Literal["reject", "review"] = "reject"
    """Where an application goes when an objection against it is upheld."""
    objection_channel: str = "书面实名异议请寄送市科协学会工作部，并附证据材料"
    """How to file an objection, printed on the public notice."""

    def _rules(self, say: _Say) -> None:
        if say.usable("pass_mark") and self.pass_mark > SCORE_SCALE:
            say("pass_mark", f"{self.pass_mark:g} is above the highest possible score "
                             f"{SCORE_SCALE:g} (every total is weighted to {SCORE_SCALE:g} "
                             "points): no application could pass", self.pass_mark)
        if say.usable("min_reviews", "per_application") and \
                self.min_reviews > self.per_application:
            say("min_reviews", f"{self.min_reviews} reviews needed but only per_application = "
                               f"{self.per_application} experts are assigned to each application: "
                               "review could never start", self.min_reviews)


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

    def _rules(self, say: _Say) -> None:
        if say.usable("grades", "scale"):
            for name, bound in self.grades.items():
                if not 0 < bound <= self.scale:
                    say(("grades", name), f"{name} = {bound:g} must be within 0..{self.scale:g} "
                                          "(the scale)", bound)
        if say.usable("grades"):
            by_bound: dict[float, list[str]] = {}
            for name, bound in self.grades.items():
                by_bound.setdefault(bound, []).append(name)
            for bound, names in by_bound.items():
                if len(names) > 1:
                    say("grades", f"grades {', '.join(names)} share the bound {bound:g}: only one "
                                  "of them could ever be given", bound)
        if say.usable("grades", "fail_grade") and self.fail_grade in self.grades:
            say("fail_grade", f"the fail grade {self.fail_grade} takes what is below the lowest "
                              "bound and must not have a bound of its own in grades",
                self.fail_grade)
        if say.usable("grades", "continue_grades", "adjust_grades"):
            for kind in ("continue_grades", "adjust_grades"):
                for name in getattr(self, kind):
                    if name not in self.grades:
                        say(kind, f"grade {name} (continue_grades/adjust_grades) is not one of "
                                  f"grades ({', '.join(self.grades)})", name)
            both = set(self.continue_grades) & set(self.adjust_grades)
            if both:
                say("adjust_grades", f"grade {', '.join(sorted(both))} is both continued and "
                                     "adjusted", sorted(both))
            loose = [g for g in self.grades if g not in self.continue_grades
                     and g not in self.adjust_grades]
            if loose:
                say("grades", f"grade {', '.join(loose)} is neither in continue_grades nor in "
                              "adjust_grades: say what it leads to", loose)
        if say.usable("adjust_grades"):
            for name, cut in self.adjust_grades.items():
                if not 0 < cut < 100:
                    say("adjust_grades", f"{name} = {cut:g} must be a percent cut between 0 "
                                         "and 100 (exclusive)", cut)
        if say.usable("checkpoints"):
            seen: set[str] = set()
            for n, c in enumerate(self.checkpoints):
                if c.id in seen:
                    say(("checkpoints", n, "id"), f"checkpoint id {c.id!r} is used twice: ids "
                                                  "must be unique", c.id)
                seen.add(c.id)
            for n, (a, b) in enumerate(zip(self.checkpoints, self.checkpoints[1:]), start=1):
                if b.report_due < a.report_due:
                    say(("checkpoints", n, "report_due"),
                        f"{b.report_due} is before the previous checkpoint's ({a.id}) "
                        f"{a.report_due}: report_due dates must be in checkpoint order",
                        str(b.report_due))


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

    def _rules(self, say: _Say) -> None:
        if say.usable("mode", "instalments") and self.mode == "instalments":
            total = sum(i.percent for i in self.instalments)
            if abs(total - 100) > 1e-6:
                say("instalments", f"percents add up to {total:g}, not 100", total)

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

    def _rules(self, say: _Say) -> None:
        if say.usable("capacities"):
            caps = [c.id for c in self.capacities]
            dup = sorted({c for c in caps if caps.count(c) > 1})
            if dup:
                say("capacities", f"capacity ids must be unique ({', '.join(dup)})", dup)
            ids = [i.id for c in self.capacities for i in c.indicators]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                say("capacities", f"indicator ids must be unique ({', '.join(dup)})", dup)
        if say.usable("capacities", "scale"):
            total = sum(i.max for c in self.capacities for i in c.indicators)
            if abs(total - self.scale) > 1e-6:
                say("capacities", f"the indicators' maxima add up to {total:g}, not the scale "
                                  f"{self.scale:g}", total)
        if say.usable("thresholds"):
            if not self.thresholds:
                say("thresholds", "no star level is defined: no society could get a star", {})
            bad = sorted(lv for lv in self.thresholds if not 1 <= lv <= 5)
            if bad:
                say("thresholds", f"star levels are 1 to 5, got {bad}", bad)
            ordered = sorted(self.thresholds.items())
            for (lo, a), (hi, b) in zip(ordered, ordered[1:]):
                if not a < b:
                    say("thresholds", f"{hi} stars ({b:g}) must need more than {lo} stars "
                                      f"({a:g}): thresholds descend with the level", b)
        if say.usable("thresholds", "scale"):
            for lv, v in sorted(self.thresholds.items()):
                if not 0 < v <= self.scale:
                    say("thresholds", f"{lv} stars = {v:g} must be within 0..{self.scale:g} "
                                      "(the sheet's scale)", v)
        if say.usable("thresholds", "rewards"):
            missing = sorted(set(self.thresholds) - set(self.rewards))
            if missing:
                say("rewards", f"no reward for {missing} star(s)", missing)
        if say.usable("rewards"):
            for lv, amount in sorted(self.rewards.items()):
                if amount < 0:
                    say(("rewards", str(lv)), f"{amount} is negative: a reward is paid, never "
                                              "charged", amount)

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

    def _rules(self, say: _Say) -> None:
        for kind in ("declaration_closes", "reviews_due", "report_due"):
            bad = [d for d in getattr(self, kind) if not 0 < d <= 366] if say.usable(kind) else []
            if bad:
                say(kind, f"days before the deadline must be between 0 and 366 (exclusive of "
                          f"0), got {bad}: a reminder goes out before its deadline", bad)


class Eligibility(Strict):
    required_fields: list[str] = ["title", "summary"]
    one_per_society_per_category: bool = True


class Separation(Strict):
    """Which separation-of-duties rules (states.roles.DUTIES) this call applies; all by default."""

    scorer_not_approver: bool = True
    proposer_not_payer: bool = True
    approver_not_auditor: bool = True


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
    separation: Separation = Separation()
    extra: dict[str, Any] = {}
    """Settings of later stages and other workflows (kept as given)."""

    @classmethod
    def _prepare(cls, data: Any) -> Any:
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

    def _rules(self, say: _Say) -> None:
        known = say.context.get("workflow_problem")
        if known is not None and say.usable("workflow"):
            problem = known(self.workflow)
            if problem:
                say("workflow", problem, self.workflow)
        if say.usable("language") and self.language not in LANGUAGES:
            say("language", f"{self.language!r} is not one of {', '.join(LANGUAGES)} (the "
                            "languages notifications are written in)", self.language)
        self._category_rules(say)
        self._criteria_rules(say)
        if self.workflow == "project":
            self._project_rules(say)

    def _category_rules(self, say: _Say) -> None:
        if not say.usable("categories"):
            return
        seen: set[str] = set()
        for n, c in enumerate(self.categories):
            if c.id in seen:
                say(("categories", n, "id"), f"category id {c.id!r} is used twice: ids must be "
                                             "unique", c.id)
            seen.add(c.id)
        if not say.usable("budget_total"):
            return
        budgets = sum(c.budget or 0 for c in self.categories)
        if budgets > self.budget_total:
            say("categories", f"the category budgets add up to {budgets:,}, more than "
                              f"budget_total {self.budget_total:,}", budgets)
        if self.workflow != "project":
            return
        left = self.budget_total - budgets
        percent = self.review.grant_percent if say.usable("review") else 100.0
        for n, c in enumerate(self.categories):
            grant = int(round(c.cap * percent / 100))
            if c.budget is None and budgets >= self.budget_total:
                say(("categories", n, "budget"), f"category {c.id} has no budget of its own and "
                                                 "the other categories' budgets take the whole "
                                                 "budget_total: nothing could be granted in it")
            elif c.budget is not None and grant > c.budget:
                say(("categories", n, "cap"), f"a project may ask for {c.cap:,} (a grant of "
                                              f"{grant:,}) but category {c.id}'s budget is "
                                              f"{c.budget:,}: such a request could never be "
                                              "funded", c.cap)
            elif c.budget is None and grant > left:
                say(("categories", n, "cap"), f"a project may ask for {c.cap:,} (a grant of "
                                              f"{grant:,}) but budget_total leaves only "
                                              f"{left:,} to the categories without a budget: "
                                              "such a request could never be funded", c.cap)

    def _criteria_rules(self, say: _Say) -> None:
        lists: list[tuple[Loc, list[Criterion]]] = []
        if say.usable("criteria"):
            lists.append((("criteria",), self.criteria))
        if say.usable("categories"):
            lists += [(("categories", n, "criteria"), c.criteria)
                      for n, c in enumerate(self.categories)]
        for where, criteria in lists:
            seen: set[str] = set()
            for n, x in enumerate(criteria):
                if x.id in seen:
                    say((*where, n, "id"), f"criterion id {x.id!r} is used twice: ids must be "
                                           "unique", x.id)
                seen.add(x.id)
        if self.workflow == "project" and say.usable("criteria", "categories") and \
                not self.criteria:
            bare = [c.id for c in self.categories if not c.criteria]
            if bare:
                say("criteria", f"no score criteria, and categories {', '.join(bare)} have none "
                                "of their own: their applications could not be scored", [])

    def _project_rules(self, say: _Say) -> None:
        if not say.usable("calendar", "assessment"):
            return
        checkpoints = self.checkpoints()
        if not checkpoints:
            say("calendar.assessment_due", "required for a project call without "
                                           "assessment.checkpoints")
            return
        first = checkpoints[0]
        if first.report_due <= self.calendar.review_due:
            where: str | Loc = ("assessment", "checkpoints", 0, "report_due") \
                if self.assessment.checkpoints else "calendar.assessment_due"
            say(where, f"the first report_due ({first.report_due}) must be after "
                       f"calendar.review_due ({self.calendar.review_due})", str(first.report_due))
        if not say.usable("payments"):
            return
        known = {"award", "completion"} | {c.id for c in checkpoints}
        for n, inst in enumerate(self.payments.plan()):
            if inst.release not in known:
                say(("payments", "instalments", n, "release"),
                    f"{inst.release!r} is not one of {', '.join(sorted(known))}", inst.release)

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
        """When a notice opened at `start` ends: calendar days, or working days as China counts
        them (make-up working days included, the call's local days laid over); a year the
        installed calendar does not cover raises workdays.NotCovered."""
        if not self.calendar.notice_working_days:
            return datetime.combine((start + timedelta(days=self.calendar.notice_days)).date(),
                                    time())
        day = self.calendar.workdays().after(start.date(), self.calendar.notice_days)
        return datetime.combine(day + timedelta(days=1), time())


class ConfigError(UserError, ValueError):
    """A call file that cannot be used; the message names the file and every bad field."""


def field_path(loc: Loc) -> str:
    """A validation error's place as a TOML path; list items count from 1 (`categories.2.cap`)."""
    return ".".join(str(p + 1) if isinstance(p, int) else str(p) for p in loc) or "(top level)"


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid call configuration"]
    for e in error.errors():
        message = " ".join(str(e["msg"]).split())
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        lines.append(f"  field {field_path(e['loc'])}: {message}")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<call>",
              workflow_problem: Callable[[str], str | None] | None = None) -> CallConfig:
    """Validate a call's settings; `workflow_problem(name)` says what is wrong with a workflow
    name (None: it is known), so an unknown workflow is named with every other bad field."""
    context = {"workflow_problem": workflow_problem} if workflow_problem else None
    try:
        return CallConfig.model_validate(data, context=context)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def load(path: str | Path,
         workflow_problem: Callable[[str], str | None] | None = None) -> CallConfig:
    """Read and validate a call TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save the call file as UTF-8"
                          ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return from_dict(data, str(path), workflow_problem)
