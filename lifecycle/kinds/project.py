"""重点活动项目资助: key-activity project funding, the 星级学会 programme's first mode.

Declaration and formal check, expert review, ranking per category cut by the budget (by class
of society when the call divides it), the leadership's decision, 公示 with objections, award
with instalments, assessment at checkpoints, and continue / adjust / terminate.

History policy: a failed or terminated project bars the society from the next calls
(`outcome.bar_calls`); a top grade earns steady support in later project calls (the call's
`support` rules); outstanding projects count when a star call names model societies.
"""
from __future__ import annotations

from lifecycle.core.callconfig import CallConfig, Say
from lifecycle.kinds import checks
from lifecycle.kinds.base import Kind
from states import (
    assessment,
    award,
    competition,
    declaration,
    outcome,
    review,
)
from states import names as S
from states.names import DRAFT
from states.workflows import Workflow

WORKFLOW = Workflow(
    name="project",
    title="重点活动项目资助 key-activity project funding",
    initial=DRAFT,
    stages=(declaration, review, competition, award, assessment, outcome),
)


def budget_by_class(call: CallConfig, say: Say) -> None:
    if not say.usable("classes") or not call.classes:
        return
    seen: set[str] = set()
    for n, k in enumerate(call.classes):
        if k.id in seen:
            say(("classes", n, "id"), f"class {k.id!r} is listed twice: ids must be unique",
                k.id)
        seen.add(k.id)
    if say.usable("budget_total"):
        total = sum(k.budget for k in call.classes)
        if total != call.budget_total:
            say("classes", f"the class budgets add up to {total:,}, not budget_total "
                           f"{call.budget_total:,}", total)
    if not say.usable("categories"):
        return
    for n, c in enumerate(call.categories):
        if c.budget is not None:
            say(("categories", n, "budget"), f"category {c.id} has a budget of its own, but "
                                             "the call divides its budget by class: give "
                                             "category budgets per class "
                                             "(classes.N.categories)", c.budget)
    percent = call.review.grant_percent if say.usable("review") else 100.0
    for n, k in enumerate(call.classes):
        unknown = [c for c in k.categories if call.category(c) is None]
        if unknown:
            say(("classes", n, "categories"), f"class {k.id}: unknown category "
                                              f"{', '.join(unknown)} (the call has "
                                              f"{', '.join(call.categories_by_id)})", unknown)
        given = sum(k.categories.values())
        if given > k.budget:
            say(("classes", n, "categories"), f"class {k.id}: the category budgets add up "
                                              f"to {given:,}, more than the class's budget "
                                              f"{k.budget:,}", given)
            continue
        left = k.budget - given
        for c in call.categories:
            grant = int(round(c.cap * percent / 100))
            own = k.categories.get(c.id)
            if own is None and left == 0:
                say(("classes", n, "categories"), f"class {k.id}: category {c.id} has no "
                                                  "budget in the class and the other "
                                                  "categories take the whole class budget: "
                                                  "nothing could be granted in it", c.id)
            elif grant > (own if own is not None else left):
                say(("classes", n, "categories"), f"class {k.id}: a {c.id} project may ask "
                                                  f"for {c.cap:,} (a grant of {grant:,}) but "
                                                  f"only {(own if own is not None else left):,}"
                                                  f" is there for it: such a request could "
                                                  "never be funded", c.id)


def support_rules_sound(call: CallConfig, say: Say) -> None:
    if not say.usable("support") or not call.support:
        return
    seen: set[str] = set()
    grades = set(call.assessment.grades) if say.usable("assessment") else None
    for n, r in enumerate(call.support):
        if r.id in seen:
            say(("support", n, "id"), f"support rule {r.id!r} is listed twice: ids must be "
                                      "unique", r.id)
        seen.add(r.id)
        if not r.gives():
            say(("support", n), f"support rule {r.id} gives nothing: set bonus, "
                                "extra_declarations, cap_percent or "
                                "continue_without_competing")
        if r.earned_by == "star":
            if r.min_level is None:
                say(("support", n, "min_level"), f"support rule {r.id} is earned by a star: "
                                                 "say which level (1 to 5) earns it")
            if r.continue_without_competing:
                say(("support", n, "continue_without_competing"),
                    f"support rule {r.id} is earned by a star, but only an outstanding "
                    "project can be continued", True)
        else:
            if r.min_level is not None:
                say(("support", n, "min_level"), f"support rule {r.id} is earned by a grade; "
                                                 "min_level is for star rules", r.min_level)
            if not r.grades:
                say(("support", n, "grades"), f"support rule {r.id}: no grade earns it", [])
            elif grades is not None:
                unknown = [g for g in r.grades if g not in grades]
                if unknown:
                    say(("support", n, "grades"), f"support rule {r.id}: {', '.join(unknown)} "
                                                  "is not one of assessment.grades "
                                                  f"({', '.join(sorted(grades))})", unknown)
        if r.extra_declarations and say.usable("eligibility") and \
                not call.eligibility.one_per_society_per_category:
            say(("support", n, "extra_declarations"),
                f"support rule {r.id}: the call sets no limit per category "
                "(eligibility.one_per_society_per_category = false), so there is nothing "
                "to go beyond", r.extra_declarations)


KIND = Kind(
    name="project",
    title=WORKFLOW.title,
    workflow=WORKFLOW,
    sections=frozenset({"criteria", "assessment", "payments", "classes", "support"}),
    rules=(checks.budget_can_fund_caps, budget_by_class, support_rules_sound,
           checks.criteria_to_score, checks.assessment_after_review),
    bars=True, earns_support=True, counts_for_models=True,
    funnel=(S.DECLARED, S.ELIGIBLE, S.REVIEWED, S.PROPOSED, S.AWARDED, S.FUNDED, S.ASSESSED,
            S.COMPLETED),
    portal=("declare_online",),
    example="examples/call.toml",
)
