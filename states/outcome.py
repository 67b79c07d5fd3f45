"""Dynamic management (动态管理): continue, adjust or terminate funding by the grade.

`decide_outcome` confirms, for the whole batch, the outcome the grade proposes;
`override_outcome` decides one application otherwise and needs a reason
(options "outcome" and "reason", given by `starfund outcome override`).
Continue releases the checkpoint's instalment; adjust cuts every unpaid
instalment by the grade's percentage (then releases the checkpoint's);
terminate cancels every unpaid instalment and records what is to be recovered.
A terminated or failed project bars its society from the next calls
(`lifecycle.rules.eligibility`; `BARS_NEXT_CALLS` names the states).
"""
from __future__ import annotations

from lifecycle.rules import payments
from notifications.reasons import Reason
from states.names import ADJUSTED, ASSESSED, COMPLETED, CONTINUED, TERMINATED
from states.roles import APPROVER
from states.spec import Context, Move, Notify, State

# --- conditions -------------------------------------------------------------


def _where(app, ctx: Context) -> Reason:
    cp = next((c for c in ctx.call.checkpoints() if c.id == app.checkpoint), None)
    name = Reason.literal(cp.name_en or cp.name, cp.name) if cp else (app.checkpoint or "")
    if app.assessment_score is not None:
        return Reason("grade_at", checkpoint=name, grade=app.assessment_grade,
                      score=app.assessment_score)
    return Reason("grade_at_unscored", checkpoint=name, grade=app.assessment_grade)


def grade_continues(app, ctx: Context) -> str | None:
    ok = app.assessment_grade in ctx.call.assessment.continue_grades
    return None if ok else Reason("grade_not_continue", grade=app.assessment_grade)


def _grade_cut(app, ctx: Context) -> float | None:
    """The percentage the grade cuts the unpaid grant by, or None when it does not adjust."""
    return ctx.call.assessment.adjust_grades.get(app.assessment_grade or "")


def _override_cut(app, ctx: Context) -> float | None:
    """An adjusting override cuts by its --cut, else by the grade's percentage."""
    cut = ctx.options.get("cut")
    if cut is None:
        cut = _grade_cut(app, ctx)
    return None if cut is None else float(cut)


def grade_adjusts(app, ctx: Context) -> str | None:
    return Reason("grade_not_adjusted", grade=app.assessment_grade) if _grade_cut(app, ctx) is None \
        else None


def grade_fails(app, ctx: Context) -> str | None:
    fail = ctx.call.assessment.fail_grade
    return None if app.assessment_grade == fail else Reason("grade_not_fail", grade=fail)


def reason_given(_app, ctx: Context) -> str | None:
    return None if str(ctx.options.get("reason") or "").strip() else \
        Reason("override_needs_reason")


def _chose(outcome: str):
    def check(_app, ctx: Context) -> str | None:
        return None if ctx.options.get("outcome") == outcome else Reason("override_is_not", outcome=outcome)
    check.__name__ = f"override_to_{outcome}"
    return check


override_to_continue, override_to_adjust, override_to_terminate = (
    _chose("continue"), _chose("adjust"), _chose("terminate"))


def override_cut_valid(app, ctx: Context) -> str | None:
    cut = _override_cut(app, ctx)
    if cut is None or not 0 < cut < 100:
        return Reason("override_cut_invalid")
    return None


def all_checkpoints_done(app, ctx: Context) -> str | None:
    last = ctx.call.checkpoints()[-1].id
    return None if app.checkpoint == last else \
        f"checkpoint {last} not yet assessed (at {app.checkpoint})"


# --- decisions --------------------------------------------------------------

def _adjusted(app, ctx: Context, cut: float, why: Reason) -> dict:
    unpaid = [p for p in ctx.data["payments"].get(app.id, []) if p.status in payments.OPEN]
    remaining = sum(p.amount for p in unpaid)
    new_remaining = remaining - int(round(remaining * cut / 100))
    old = app.granted_amount or 0
    new = old - (remaining - new_remaining)
    return {"granted_amount": new,
            "decision_reason": Reason("adjusted", why=why, cut=cut, remaining=remaining,
                                      new_remaining=new_remaining, old=old, new=new)}


def _terminated(app, ctx: Context, why: Reason) -> dict:
    mine = ctx.data["payments"].get(app.id, [])
    paid = sum(p.amount for p in mine if p.status == "paid")
    stopped = sum(p.amount for p in mine if p.status in payments.OPEN)
    recover = int(round(paid * ctx.call.payments.recover_percent / 100))
    return {"granted_amount": paid, "amount_to_recover": recover,
            "decision_reason": Reason("terminated", why=why, stopped=stopped, paid=paid,
                                      recover=recover)}


def adjusted_by_grade(app, ctx: Context) -> dict:
    return _adjusted(app, ctx, _grade_cut(app, ctx), _where(app, ctx))


def terminated_by_grade(app, ctx: Context) -> dict:
    return _terminated(app, ctx, _where(app, ctx))


def continued_by_override(app, ctx: Context) -> dict:
    return {"decision_reason": Reason("continued_override", why=_where(app, ctx),
                                      reason=str(ctx.options["reason"]))}


def adjusted_by_override(app, ctx: Context) -> dict:
    return _adjusted(app, ctx, _override_cut(app, ctx),
                     Reason("adjusted_override", why=_where(app, ctx),
                            reason=str(ctx.options["reason"])))


def terminated_by_override(app, ctx: Context) -> dict:
    return _terminated(app, ctx, Reason("terminated_override", why=_where(app, ctx),
                                         reason=str(ctx.options["reason"])))


# --- batch loaders and effects -------------------------------------------------

def load_payments(conn, ctx: Context, apps) -> None:
    ctx.data["payments"] = payments.open_payments(conn, ctx.call.id, apps.ids())


def release_checkpoint(conn, ctx: Context, apps) -> None:
    payments.release(conn, ctx.call.id, {a.id: a.checkpoint for a in apps}, ctx.now, ctx.actor)


def _cut_and_release(conn, ctx: Context, apps, cut_of) -> None:
    payments.cut(conn, ctx.call.id, {a.id: cut_of(a, ctx) for a in apps}, ctx.now, ctx.actor)
    release_checkpoint(conn, ctx, apps)


def cut_by_grade_and_release(conn, ctx: Context, apps) -> None:
    _cut_and_release(conn, ctx, apps, _grade_cut)


def cut_by_override_and_release(conn, ctx: Context, apps) -> None:
    _cut_and_release(conn, ctx, apps, _override_cut)


def cancel_unpaid(conn, ctx: Context, apps) -> None:
    payments.cancel(conn, ctx.call.id, {a.id: ctx.updates[a.id]["decision_reason"] for a in apps},
                    ctx.now, ctx.actor)


def release_completion(conn, ctx: Context, apps) -> None:
    payments.release(conn, ctx.call.id, {a.id: "completion" for a in apps}, ctx.now, ctx.actor)


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "decide_outcome": "确认考核结论 decide the outcomes",
    "override_outcome": "另行决定考核结论 override an outcome",
    "complete": "结题 complete",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""

STATES = (
    State(CONTINUED, "继续资助 continued", notify=(Notify("outcome_continued"),)),
    State(ADJUSTED, "调整资助 adjusted", notify=(Notify("outcome_adjusted"),)),
    State(TERMINATED, "终止资助 terminated", notify=(Notify("outcome_terminated"),), final=True),
    State(COMPLETED, "已结题 completed", final=True),
)

BARS_NEXT_CALLS = (TERMINATED,)
"""The outcomes that bar the project's society from the next calls (as a failed grade does)."""

OUTCOMES = (CONTINUED, ADJUSTED, TERMINATED, COMPLETED)
"""The states a funded project reaches by its assessment's outcome."""

_P = (load_payments,)
MOVES = (
    Move("decide_outcome", (ASSESSED,), CONTINUED, (grade_continues,), prepare=_P,
         effects=(release_checkpoint,), help="confirm the outcomes the grades propose",
         who=(APPROVER,)),
    Move("decide_outcome", (ASSESSED,), ADJUSTED, (grade_adjusts,), prepare=_P,
         decide=(adjusted_by_grade,), effects=(cut_by_grade_and_release,),
         who=(APPROVER,)),
    Move("decide_outcome", (ASSESSED,), TERMINATED, (grade_fails,), prepare=_P,
         decide=(terminated_by_grade,), effects=(cancel_unpaid,),
         who=(APPROVER,)),
    Move("override_outcome", (ASSESSED,), CONTINUED, (reason_given, override_to_continue),
         prepare=_P, decide=(continued_by_override,), effects=(release_checkpoint,),
         help="decide one application otherwise, with a reason (`starfund outcome override`)",
         who=(APPROVER,)),
    Move("override_outcome", (ASSESSED,), ADJUSTED,
         (reason_given, override_to_adjust, override_cut_valid), prepare=_P,
         decide=(adjusted_by_override,), effects=(cut_by_override_and_release,),
         who=(APPROVER,)),
    Move("override_outcome", (ASSESSED,), TERMINATED, (reason_given, override_to_terminate),
         prepare=_P, decide=(terminated_by_override,), effects=(cancel_unpaid,),
         who=(APPROVER,)),
    Move("complete", (CONTINUED, ADJUSTED), COMPLETED, (all_checkpoints_done,),
         effects=(release_completion,), help="close projects whose last checkpoint passed",
         who=(APPROVER,)),
)
