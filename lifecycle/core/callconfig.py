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

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
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


class Say:
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

    def _rules(self, say: Say) -> None:
        """Cross-field checks; report with `say(field, message)`, guard with `say.usable(...)`."""

    @classmethod
    def _prepare(cls, data: Any, context: dict[str, Any] | None) -> Any:
        """Fill in what the raw data implies before validation (see CallConfig)."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _validate_all(cls, data: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        data = cls._prepare(data, info.context)
        try:
            model = handler(data)
        except ValidationError as e:
            errors = [_error(x["loc"], x["type"], x["msg"], x.get("input")) for x in e.errors()]
            partial, bad = cls._partial(data, info.context)
            if partial is not None:
                say = Say(bad, info.context)
                partial._rules(say)
                errors += say.found
            raise ValidationError.from_exception_data(cls.__name__, errors) from None
        if isinstance(data, BaseModel):
            return model  # an instance already checked when it was made
        say = Say(set(), info.context)
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
        if cls.model_config.get("extra") == "allow":
            good.update((k, v) for k, v in data.items() if k not in cls.model_fields)
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

    def _rules(self, say: Say) -> None:
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
    objection_channel_en: str = ("Objections must be signed and written, with evidence, and "
                                 "sent to the Society Affairs Department of the association")
    """The same in English (the notice with --lang en)."""

    def _rules(self, say: Say) -> None:
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

    def _rules(self, say: Say) -> None:
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

    def _rules(self, say: Say) -> None:
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
    """The highest score on the sheet (what societies, the association and experts score)."""
    weight: float | None = Field(None, gt=0)
    """The points the indicator carries in the total (a full score gives all of them);
    default: its maximum, so the total is the plain sum of the scores."""


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


def _threshold_problems(thresholds: dict[int, float], scale: float) -> list[str]:
    """What is wrong with a set of star thresholds on a sheet of `scale` points."""
    out: list[str] = []
    if not thresholds:
        return ["no star level is defined: no society could get a star"]
    bad = sorted(lv for lv in thresholds if not 1 <= lv <= 5)
    if bad:
        out.append(f"star levels are 1 to 5, got {bad}")
    ordered = sorted(thresholds.items())
    for (lo, a), (hi, b) in zip(ordered, ordered[1:]):
        if not a < b:
            out.append(f"{hi} stars ({b:g}) must need more than {lo} stars ({a:g}): thresholds "
                       "descend with the level")
    for lv, v in ordered:
        if not 0 < v <= scale:
            out.append(f"{lv} stars = {v:g} must be within 0..{scale:g} (the sheet's scale)")
    return out


class StarClass(Strict):
    """One class of society's own rule in a star call (整体规划，分类实施, 因会制宜).

    Societies of the class are rated on the call's sheet with these changes; what is
    not given is the call's. A class's indicators must still add up to the scale.
    """

    id: str = Field(min_length=1, max_length=64)
    """The class as societies carry it (the `class` column of `society import`)."""
    name_en: str = ""
    maxima: dict[str, PositiveFloat] = {}
    """Indicator -> its maximum score on this class's sheet."""
    weights: dict[str, PositiveFloat] = {}
    """Indicator -> the points it carries in this class's total (default: as on the call's
    sheet, or this class's maximum when only the maximum is changed)."""
    thresholds: dict[int, float] | None = None
    """Star level -> lowest total for it in this class (default: the call's thresholds)."""
    reward_share: float | None = Field(None, gt=0, le=100)
    """Percent of the reward pool (budget_total) this class's rewards may take; given for
    one class, it must be given for all, adding up to 100."""


class ModelRule(Strict):
    """One way a society is named a model society (示范学会) at the end of a star call."""

    min_level: int = Field(ge=1, le=5)
    """The star level the society needs in this call (and in the calls counted by in_a_row)."""
    in_a_row: int = Field(1, ge=1, le=10)
    """Star calls in a row, this one included, that each awarded it at least min_level."""
    clean_years: int = Field(0, ge=0, le=20)
    """And no project of the society terminated or graded the fail grade in the project
    calls created in the last clean_years years (0: not asked)."""


class ModelSocieties(Strict):
    """Model societies (示范学会, 示范带动): named by the first rule a starred society meets."""

    rules: list[ModelRule] = []
    """Any one of them names the society; none (no [star.model] table): no model societies.
    A [star.model] table written without a rule is refused (it would name nobody)."""
    validity_years: int | None = Field(None, ge=1, le=10)
    """How long the title lasts (default: star.validity_years)."""


@dataclass(frozen=True)
class ClassSheet:
    """What rates the societies of one class in a star call: the sheet's maxima and weights,
    the thresholds and the class's reward pool. `cls` "" is the call's own sheet."""

    cls: str
    scale: float
    maxima: dict[str, float]
    weights: dict[str, float]
    thresholds: dict[int, float]
    pool: int | None = None
    share: float | None = None

    def level_of(self, total: float) -> int:
        """The star level a total reaches (0: none)."""
        return max((lv for lv, bound in self.thresholds.items() if total >= bound), default=0)

    def points(self, scores: dict[str, float]) -> float:
        """Indicator scores in points of the total: each weighted by weight / maximum."""
        return sum(v if self.weights[i] == self.maxima[i] else v * self.weights[i] / self.maxima[i]
                   for i, v in scores.items() if i in self.maxima)

    def total(self, finals: dict[str, float]) -> float:
        """The total of final indicator scores (one decimal)."""
        return round(self.points(finals), 1)

    @property
    def plain(self) -> bool:
        """The total is the plain sum of the scores (every weight equals its maximum)."""
        return all(abs(self.weights[i] - m) < 1e-9 for i, m in self.maxima.items())

    def thresholds_text(self) -> str:
        return "/".join(f"{v:g}" for _, v in sorted(self.thresholds.items(), reverse=True))


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
    classes: list[StarClass] = []
    """Classes of society with a rule of their own; a society of another class (or of none)
    is rated on the call's sheet, unless the classes share the reward pool."""
    model: ModelSocieties = ModelSocieties()

    def _rules(self, say: Say) -> None:
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
            weighted = any(i.weight is not None for c in self.capacities for i in c.indicators)
            total = sum(i.weight or i.max for c in self.capacities for i in c.indicators)
            if abs(total - self.scale) > 1e-6:
                what = "weights" if weighted else "maxima"
                say("capacities", f"the indicators' {what} add up to {total:g}, not the scale "
                                  f"{self.scale:g}", total)
        if say.usable("thresholds", "scale"):
            for problem in _threshold_problems(self.thresholds, self.scale):
                say("thresholds", problem, self.thresholds)
        if say.usable("thresholds", "rewards"):
            missing = sorted(set(self.thresholds) - set(self.rewards))
            if missing:
                say("rewards", f"no reward for {missing} star(s)", missing)
        if say.usable("rewards"):
            for lv, amount in sorted(self.rewards.items()):
                if amount < 0:
                    say(("rewards", str(lv)), f"{amount} is negative: a reward is paid, never "
                                              "charged", amount)
        if say.usable("classes", "capacities", "scale", "thresholds", "rewards"):
            self._class_rules(say)
        if "kind_of" in say.context and "model" in self.model_fields_set and \
                say.usable("model") and not self.model.rules:  # a written file, not a dump
            say(("model", "rules"), "[star.model] is written but has no rule: no society could "
                                    "be named a model society; add [[star.model.rules]] or "
                                    "remove [star.model]", [])

    def _class_rules(self, say: Say) -> None:
        known = self.indicators()
        seen: set[str] = set()
        for n, k in enumerate(self.classes):
            if k.id in seen:
                say(("classes", n, "id"), f"class {k.id!r} is listed twice: ids must be unique",
                    k.id)
            seen.add(k.id)
            for kind in ("maxima", "weights"):
                unknown = [i for i in getattr(k, kind) if i not in known]
                if unknown:
                    say(("classes", n, kind), f"class {k.id}: unknown indicator(s) "
                                              f"{', '.join(unknown)} (the sheet has "
                                              f"{', '.join(known)})", unknown)
            sheet = self._sheet_of(k)
            total = sum(sheet.weights.values())
            if abs(total - self.scale) > 1e-6:
                what = "weights" if k.weights else "maxima"
                say(("classes", n, what), f"class {k.id}: the indicators' {what} add up to "
                                          f"{total:g}, not the scale {self.scale:g}", total)
            if k.thresholds is not None:
                for problem in _threshold_problems(k.thresholds, self.scale):
                    say(("classes", n, "thresholds"), f"class {k.id}: {problem}", k.thresholds)
                missing = sorted(set(k.thresholds) - set(self.rewards))
                if missing:
                    say(("classes", n, "thresholds"), f"class {k.id}: no reward for "
                                                      f"{missing} star(s) (star.rewards)", missing)
        shares = [k.reward_share for k in self.classes]
        if any(v is not None for v in shares):
            bare = [k.id for k in self.classes if k.reward_share is None]
            if bare:
                say("classes", f"class(es) {', '.join(bare)} have no reward_share while "
                               "others do: give every class its share of the pool", bare)
            else:
                total = sum(v for v in shares if v is not None)
                if abs(total - 100) > 1e-6:
                    say("classes", f"the classes' reward shares add up to {total:g}%, not 100%",
                        total)

    def indicators(self) -> dict[str, tuple[Capacity, Indicator]]:
        return {i.id: (c, i) for c in self.capacities for i in c.indicators}

    def level_of(self, total: float) -> int:
        """The star level a total reaches on the call's own sheet (0: none)."""
        return self.sheet_for("").level_of(total)

    @property
    def pooled(self) -> bool:
        """The classes share the reward pool: only societies of these classes are rated."""
        return any(k.reward_share is not None for k in self.classes)

    def _sheet_of(self, k: StarClass | None, pool_total: int | None = None) -> ClassSheet:
        maxima, weights = {}, {}
        for i, (_, ind) in self.indicators().items():
            own = k.maxima.get(i) if k is not None else None
            maxima[i] = own or ind.max
            given = k.weights.get(i) if k is not None else None
            weights[i] = given or ind.weight or maxima[i]
        if k is None:
            return ClassSheet("", self.scale, maxima, weights, dict(self.thresholds))
        pool = int(pool_total * k.reward_share / 100) \
            if pool_total is not None and k.reward_share is not None else None
        return ClassSheet(k.id, self.scale, maxima, weights,
                          dict(k.thresholds if k.thresholds is not None else self.thresholds),
                          pool, k.reward_share)

    def own_sheet(self) -> ClassSheet:
        """The call's own sheet (societies of no listed class, when they are rated)."""
        return self._sheet_of(None)

    def sheet_for(self, cls: str, pool_total: int | None = None) -> ClassSheet | None:
        """What rates a society of class `cls`: its class's sheet, else the call's own; None
        when the classes share the reward pool and `cls` is none of them (not rated here).
        `pool_total`: the call's budget_total, to size the class's reward pool."""
        for k in self.classes:
            if k.id == cls:
                return self._sheet_of(k, pool_total)
        return None if self.pooled else self._sheet_of(None)


class Mail(Strict):
    """How the call's messages go out: `hold` names the message kinds (e.g. "rejected",
    "formal_check_failed"; "*" for every kind) that wait in the outbox for an administrator
    to review, edit or discard and release (`notify outbox`); the others are sent at once."""

    hold: list[str] = []

    def holds(self, kind: str) -> bool:
        return "*" in self.hold or kind in self.hold

    def _rules(self, say: Say) -> None:
        if say.usable("hold"):
            for i, kind in enumerate(self.hold):
                if kind != "*" and not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", kind):
                    say(("hold", i), f"{kind!r} is not a message kind (e.g. rejected, or *)")


class Reminders(Strict):
    """Days before each deadline kind that reminders go out (fractions allowed: 0.5 = 12 hours).

    Reminders go only to those who still have something to do: societies with
    drafts (declaration_closes), experts with missing scores (reviews_due),
    societies whose report is due (report_due).
    """

    declaration_closes: list[float] = [7, 3, 1]
    reviews_due: list[float] = [3, 1]
    report_due: list[float] = [14, 3]

    def _rules(self, say: Say) -> None:
        for kind in ("declaration_closes", "reviews_due", "report_due"):
            bad = [d for d in getattr(self, kind) if not 0 < d <= 366] if say.usable(kind) else []
            if bad:
                say(kind, f"days before the deadline must be between 0 and 366 (exclusive of "
                          f"0), got {bad}: a reminder goes out before its deadline", bad)


class AttachmentKind(Strict):
    """A file a declaration carries (申报书, budget sheet): checked by content, not by name."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: str
    name_en: str = ""
    required: bool = False
    """A draft without a current file of a required kind cannot be submitted."""
    types: list[str] = ["pdf", "docx", "xlsx"]
    """The content types accepted (lifecycle.core.uploads.TYPES)."""


def _default_attachments() -> list[AttachmentKind]:
    return [AttachmentKind(id="application_form", name="申报书", name_en="Application form",
                           types=["pdf", "docx"]),
            AttachmentKind(id="budget", name="经费预算表", name_en="Budget sheet",
                           types=["xlsx", "pdf"])]


class Eligibility(Strict):
    required_fields: list[str] = ["title", "summary"]
    one_per_society_per_category: bool = True
    attachments: list[AttachmentKind] = Field(default_factory=_default_attachments)
    """The files a declaration may carry; those `required` must be there before `submit`."""

    def attachment(self, kind: str) -> AttachmentKind | None:
        return next((a for a in self.attachments if a.id == kind), None)


class Separation(Strict):
    """Which separation-of-duties rules (states.roles.DUTIES) this call applies; all by default."""

    scorer_not_approver: bool = True
    proposer_not_payer: bool = True
    approver_not_auditor: bool = True


class FundClass(Strict):
    """One class of society's share of a project call's budget (分类实施): its applications
    rank within the class (per category where the class gives the category a budget)."""

    id: str = Field(min_length=1, max_length=64)
    """The class as societies carry it (the `class` column of `society import`)."""
    name_en: str = ""
    budget: int = Field(gt=0)
    """The class's share of budget_total; the classes' budgets add up to it."""
    categories: dict[str, PositiveInt] = {}
    """Category -> its budget within the class; categories not named share what is left."""


SUPPORT_EFFECTS = ("bonus", "extra_declarations", "cap_percent", "continue_without_competing")


class SupportRule(Strict):
    """Steady support for outstanding results (重点支持，激励进步): what an earlier result earns
    a society in this call. Applied by the batch loaders, like the bar on failed societies."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    earned_by: Literal["grade", "star"]
    """"grade": a project of the society whose final checkpoint was graded one of `grades`
    in the last `within_calls` project calls; "star": a star of at least `min_level` held now."""
    grades: list[str] = ["优秀"]
    within_calls: int = Field(1, ge=1, le=10)
    min_level: int | None = Field(None, ge=1, le=5)
    bonus: float = Field(0, ge=0, le=SCORE_SCALE)
    """Points added to the ranking score (the pass mark still applies to the experts' score)."""
    extra_declarations: int = Field(0, ge=0, le=10)
    """Declarations per category beyond the one eligibility allows."""
    cap_percent: float = Field(0, ge=0, le=1000)
    """The category cap (most one project may request) raised by this percentage."""
    continue_without_competing: bool = False
    """A declaration continuing the outstanding project (its `continues` column) is funded
    from its budget at the formal check, without review and ranking."""

    def gives(self) -> list[str]:
        return [e for e in SUPPORT_EFFECTS if getattr(self, e)]


def _default_criteria() -> list[Criterion]:
    rows = [("content", "内容与意义", "Content and significance", 30),
            ("method", "方法与可行性", "Method and feasibility", 25),
            ("team", "团队", "Team", 15),
            ("outputs", "预期成果", "Expected outputs", 20),
            ("budget", "经费预算", "Budget", 10)]
    return [Criterion(id=i, name=n, name_en=e, max=w, weight=w) for i, n, e, w in rows]


COMMON_SECTIONS = frozenset({"id", "title", "title_en", "workflow", "language", "calendar",
                             "budget_total", "categories", "review", "eligibility", "reminders",
                             "mail", "separation", "extra"})
"""The settings every kind of call reads; a kind names the others it reads (`KindRules`)."""


class KindRules(Protocol):
    """What a kind of call (`lifecycle.kinds`) adds to its settings: the sections it reads
    beyond the common ones, what the raw settings imply, and its own cross-field rules."""

    name: str
    sections: frozenset[str]
    hints: dict[str, str]
    """Per section it does not read, what it has instead (said when the section is refused)."""

    def prepare(self, data: dict[str, Any]) -> dict[str, Any]: ...

    def check(self, config: CallConfig, say: Say) -> None: ...


KindOf = Callable[[str], "KindRules | str"]
"""A kind's rules by name, or what is wrong with the name (`lifecycle.kinds.rules_of`)."""


class CallConfig(Strict):
    """A call's settings. A kind's own section (e.g. `[grant]`) is kept as given and validated
    by its kind when the call is read with the kinds (`lifecycle.kinds.parse`); any other
    section a kind does not read is refused there, naming it."""

    model_config = ConfigDict(extra="allow")

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
    mail: Mail = Mail()
    separation: Separation = Separation()
    classes: list[FundClass] = []
    """Project calls: the budget divided by class of society (default: one budget for all)."""
    support: list[SupportRule] = []
    """Project calls: what earlier outstanding results earn (default: nothing)."""
    extra: dict[str, Any] = {}
    """Free settings kept as given (read by no rule)."""
    definition: str = ""
    """The version (digest) of the workflow definition the call was created with; set by
    `call create` and `starfund init`, changed only by `call migrate`."""
    definition_outline: list[str] = []
    """That definition's states and moves, one line each: what `advance` names when the
    code's definition has changed."""

    @classmethod
    def _prepare(cls, data: Any, context: dict[str, Any] | None) -> Any:
        """What the call's kind implies of its raw settings (a star call: one category)."""
        kind = _kind(context, data.get("workflow", "project")) if isinstance(data, dict) else None
        return kind.prepare(data) if kind is not None else data

    def checkpoints(self) -> list[Checkpoint]:
        """The assessment checkpoints in order (the default: one final one)."""
        if self.assessment.checkpoints:
            return self.assessment.checkpoints
        due = self.calendar.assessment_due
        return [Checkpoint(id="final", name="结题验收", name_en="Final acceptance",
                           report_due=due)] if due else []

    def section(self, name: str) -> Any:
        """A section kept as given (a kind's own), or None."""
        return (self.model_extra or {}).get(name)

    def _rules(self, say: Say) -> None:
        kind = None
        if "kind_of" in say.context and say.usable("workflow"):
            found = say.context["kind_of"](self.workflow)
            if isinstance(found, str):
                say("workflow", found, self.workflow)
            else:
                kind = found
        if say.usable("language") and self.language not in LANGUAGES:
            say("language", f"{self.language!r} is not one of {', '.join(LANGUAGES)} (the "
                            "languages notifications are written in)", self.language)
        self._category_rules(say)
        self._criteria_rules(say)
        if kind is not None:
            self._unread_sections(kind, say)
            kind.check(self, say)

    def given(self) -> set[str]:
        """The top-level settings the call's data gave (a file's tables; for a stored call's
        full dump, every one: check only what people write)."""
        return (set(self.model_fields_set) & set(type(self).model_fields)) \
            | set(self.model_extra or {})

    def _unread_sections(self, kind: KindRules, say: Say) -> None:
        """A section the call's kind does not read is refused, never silently ignored."""
        reads = COMMON_SECTIONS | kind.sections
        for name in sorted(self.given() - reads - {"definition", "definition_outline"}):
            readers = say.context.get("readers", lambda _: [])(name)
            hint = kind.hints.get(name)
            fix = f'remove it, or set workflow = "{readers[0]}"' if len(readers) == 1 else \
                "remove it"
            say(name, f"a {kind.name} call does not read [{name}] ("
                      + (f"only {' and '.join(readers)} calls do" if readers
                         else "no kind of call reads it")
                      + (f"; {hint}" if hint else "") + f"): {fix}", None)

    def _category_rules(self, say: Say) -> None:
        if not say.usable("categories"):
            return
        seen: set[str] = set()
        for n, c in enumerate(self.categories):
            if c.id in seen:
                say(("categories", n, "id"), f"category id {c.id!r} is used twice: ids must be "
                                             "unique", c.id)
            seen.add(c.id)
        if self.classes or not say.usable("budget_total", "classes"):
            return  # the budget is divided by class (the project kind's rules)
        budgets = sum(c.budget or 0 for c in self.categories)
        if budgets > self.budget_total:
            say("categories", f"the category budgets add up to {budgets:,}, more than "
                              f"budget_total {self.budget_total:,}", budgets)

    def class_of(self, cls: str) -> FundClass | None:
        """A project call's class by id (None: the call does not list it)."""
        return next((k for k in self.classes if k.id == cls), None)

    def _criteria_rules(self, say: Say) -> None:
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


def _kind(context: dict[str, Any] | None, name: Any) -> KindRules | None:
    found = context["kind_of"](str(name)) if context and "kind_of" in context else None
    return None if found is None or isinstance(found, str) else found


def from_dict(data: dict[str, Any], source: str = "<call>", kind_of: KindOf | None = None,
              readers: Callable[[str], list[str]] | None = None) -> CallConfig:
    """Validate a call's settings; with `kind_of` (`lifecycle.kinds.parse`), the call's kind
    adds its rules, and an unknown kind is named with every other bad field."""
    context = {"kind_of": kind_of, "readers": readers or (lambda _: [])} if kind_of else None
    try:
        return CallConfig.model_validate(data, context=context)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def load(path: str | Path, kind_of: KindOf | None = None,
         readers: Callable[[str], list[str]] | None = None) -> CallConfig:
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
    return from_dict(data, str(path), kind_of, readers)
