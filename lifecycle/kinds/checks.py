"""Settings rules more than one kind of call shares (each kind lists the ones it runs).

Moved out of `lifecycle.core.callconfig`, which no longer asks which workflow a call runs:
a kind's `check` calls these on the parsed settings and reports through `Say`.
"""
from __future__ import annotations

from lifecycle.core.callconfig import CallConfig, Loc, Say


def budget_can_fund_caps(call: CallConfig, say: Say) -> None:
    """Every category's cap could be granted from the budget it draws on."""
    if call.classes or not say.usable("categories", "budget_total", "classes"):
        return
    budgets = sum(c.budget or 0 for c in call.categories)
    if budgets > call.budget_total:
        return  # said by the common rules
    left = call.budget_total - budgets
    percent = call.review.grant_percent if say.usable("review") else 100.0
    for n, c in enumerate(call.categories):
        grant = int(round(c.cap * percent / 100))
        if c.budget is None and budgets >= call.budget_total:
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


def criteria_to_score(call: CallConfig, say: Say) -> None:
    """Every category has criteria its experts score on (its own, or the call's)."""
    if say.usable("criteria", "categories") and not call.criteria:
        bare = [c.id for c in call.categories if not c.criteria]
        if bare:
            say("criteria", f"no score criteria, and categories {', '.join(bare)} have none "
                            "of their own: their applications could not be scored", [])


def assessment_after_review(call: CallConfig, say: Say) -> None:
    """Funded work is assessed at checkpoints after the review, and paid on known releases."""
    if not say.usable("calendar", "assessment"):
        return
    checkpoints = call.checkpoints()
    if not checkpoints:
        say("calendar.assessment_due", f"required for a {call.workflow} call without "
                                       "assessment.checkpoints")
        return
    first = checkpoints[0]
    if first.report_due <= call.calendar.review_due:
        where: str | Loc = ("assessment", "checkpoints", 0, "report_due") \
            if call.assessment.checkpoints else "calendar.assessment_due"
        say(where, f"the first report_due ({first.report_due}) must be after "
                   f"calendar.review_due ({call.calendar.review_due})", str(first.report_due))
    if not say.usable("payments"):
        return
    known = {"award", "completion"} | {c.id for c in checkpoints}
    for n, inst in enumerate(call.payments.plan()):
        if inst.release not in known:
            say(("payments", "instalments", n, "release"),
                f"{inst.release!r} is not one of {', '.join(sorted(known))}", inst.release)
