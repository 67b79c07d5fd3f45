"""Dynamic management (动态管理): continue, adjust or terminate funding by the grade.

`decide_outcome` confirms, for the whole batch, the outcome the grade proposes;
`override_outcome` decides one application otherwise and needs a reason
(options "outcome" and "reason", given by `starfund outcome override`).
Continue releases the checkpoint's instalment; adjust cuts every unpaid
instalment by the grade's percentage (then releases the checkpoint's);
terminate cancels every unpaid instalment and records what is to be recovered.
A terminated or failed project bars its society from the next calls
(`barred_societies`).
"""
from __future__ import annotations

from sqlalchemy import select

from lifecycle.acts import payments
from lifecycle.core.models import Application, AssessmentRecord, Call
from states.spec import Context, Move, Notify, State

# --- conditions -------------------------------------------------------------


def _where(app, ctx: Context) -> str:
    name = next((c.name for c in ctx.call.checkpoints() if c.id == app.checkpoint),
                app.checkpoint or "")
    return f"{name} grade {app.assessment_grade} ({app.assessment_score:g})" \
        if app.assessment_score is not None else f"{name} grade {app.assessment_grade}"


def grade_continues(app, ctx: Context) -> str | None:
    ok = app.assessment_grade in ctx.call.assessment.continue_grades
    return None if ok else f"grade {app.assessment_grade} does not continue"


def _adjust(app, ctx: Context, cut: float, why: str) -> None:
    unpaid = [p for p in ctx.data["payments"].get(app.id, []) if p.status in payments.OPEN]
    remaining = sum(p.amount for p in unpaid)
    new_remaining = remaining - int(round(remaining * cut / 100))
    old = app.granted_amount or 0
    new = old - (remaining - new_remaining)
    ctx.data.setdefault("cuts", {})[app.id] = cut
    ctx.updates[app.id] = {"granted_amount": new,
                           "decision_reason": f"{why}: unpaid grant cut {cut:g}% "
                                              f"({remaining} -> {new_remaining}); "
                                              f"grant {old} -> {new}"}


def grade_adjusts(app, ctx: Context) -> str | None:
    cut = ctx.call.assessment.adjust_grades.get(app.assessment_grade or "")
    if cut is None:
        return f"grade {app.assessment_grade} is not adjusted"
    _adjust(app, ctx, cut, _where(app, ctx))
    return None


def _terminate(app, ctx: Context, why: str) -> None:
    mine = ctx.data["payments"].get(app.id, [])
    paid = sum(p.amount for p in mine if p.status == "paid")
    stopped = sum(p.amount for p in mine if p.status in payments.OPEN)
    recover = int(round(paid * ctx.call.payments.recover_percent / 100))
    ctx.updates[app.id] = {"granted_amount": paid, "amount_to_recover": recover,
                           "decision_reason": f"{why}: terminated; {stopped} unpaid cancelled, "
                                              f"{paid} paid, {recover} to recover"}


def grade_fails(app, ctx: Context) -> str | None:
    fail = ctx.call.assessment.fail_grade
    if app.assessment_grade != fail:
        return f"grade is not {fail}"
    _terminate(app, ctx, _where(app, ctx))
    return None


def reason_given(_app, ctx: Context) -> str | None:
    return None if str(ctx.options.get("reason") or "").strip() else \
        "an override needs a reason (--reason)"


def _chose(outcome: str):
    def check(_app, ctx: Context) -> str | None:
        return None if ctx.options.get("outcome") == outcome else f"override is not {outcome}"
    check.__name__ = f"override_to_{outcome}"
    return check


override_to_continue, override_to_adjust, override_to_terminate = (
    _chose("continue"), _chose("adjust"), _chose("terminate"))


def override_continue_terms(app, ctx: Context) -> str | None:
    ctx.updates[app.id] = {"decision_reason": f"{_where(app, ctx)}: continued by override: "
                                              f"{ctx.options['reason']}"}
    return None


def override_cut(app, ctx: Context) -> str | None:
    cut = ctx.options.get("cut")
    if cut is None:
        cut = ctx.call.assessment.adjust_grades.get(app.assessment_grade or "")
    if cut is None or not 0 < float(cut) < 100:
        return "an adjusting override needs a cut between 0 and 100 percent (--cut)"
    _adjust(app, ctx, float(cut), f"{_where(app, ctx)}: adjusted by override "
                                  f"({ctx.options['reason']})")
    return None


def override_termination_terms(app, ctx: Context) -> str | None:
    _terminate(app, ctx, f"{_where(app, ctx)}: by override ({ctx.options['reason']})")
    return None


def all_checkpoints_done(app, ctx: Context) -> str | None:
    last = ctx.call.checkpoints()[-1].id
    return None if app.checkpoint == last else \
        f"checkpoint {last} not yet assessed (at {app.checkpoint})"


# --- batch loaders and effects -------------------------------------------------

def load_payments(conn, ctx: Context, apps) -> None:
    ctx.data["payments"] = payments.open_payments(conn, ctx.call.id, [a.id for a in apps])


def release_checkpoint(conn, ctx: Context, apps) -> None:
    payments.release(conn, ctx.call.id, {a.id: a.checkpoint for a in apps}, ctx.now, ctx.actor)


def cut_and_release(conn, ctx: Context, apps) -> None:
    payments.cut(conn, ctx.call.id, {a.id: ctx.data["cuts"][a.id] for a in apps}, ctx.now,
                 ctx.actor)
    release_checkpoint(conn, ctx, apps)


def cancel_unpaid(conn, ctx: Context, apps) -> None:
    payments.cancel(conn, ctx.call.id, {a.id: ctx.updates[a.id]["decision_reason"] for a in apps},
                    ctx.now, ctx.actor)


def release_completion(conn, ctx: Context, apps) -> None:
    payments.release(conn, ctx.call.id, {a.id: "completion" for a in apps}, ctx.now, ctx.actor)


# --- the table --------------------------------------------------------------

STATES = (
    State("continued", "继续资助 continued", notify=(Notify("outcome_continued"),)),
    State("adjusted", "调整资助 adjusted", notify=(Notify("outcome_adjusted"),)),
    State("terminated", "终止资助 terminated", notify=(Notify("outcome_terminated"),), final=True),
    State("completed", "已结题 completed", final=True),
)

_P = (load_payments,)
MOVES = (
    Move("decide_outcome", ("assessed",), "continued", (grade_continues,), prepare=_P,
         effects=(release_checkpoint,), help="confirm the outcomes the grades propose"),
    Move("decide_outcome", ("assessed",), "adjusted", (grade_adjusts,), prepare=_P,
         effects=(cut_and_release,)),
    Move("decide_outcome", ("assessed",), "terminated", (grade_fails,), prepare=_P,
         effects=(cancel_unpaid,)),
    Move("override_outcome", ("assessed",), "continued",
         (reason_given, override_to_continue, override_continue_terms), prepare=_P,
         effects=(release_checkpoint,),
         help="decide one application otherwise, with a reason (`starfund outcome override`)"),
    Move("override_outcome", ("assessed",), "adjusted",
         (reason_given, override_to_adjust, override_cut), prepare=_P,
         effects=(cut_and_release,)),
    Move("override_outcome", ("assessed",), "terminated",
         (reason_given, override_to_terminate, override_termination_terms), prepare=_P,
         effects=(cancel_unpaid,)),
    Move("complete", ("continued", "adjusted"), "completed", (all_checkpoints_done,),
         effects=(release_completion,), help="close projects whose last checkpoint passed"),
)


def barred_societies(conn, call=None) -> dict[str, str]:
    """Societies barred by a terminated or failed project of an earlier project call.

    A project call bars for its own `assessment.bar_calls_after_failure` later
    calls, counted in order of creation; a call of another workflow (a star
    call) is barred as the next project call would be. Failed: any checkpoint
    graded with the call's fail grade, even if an override kept the funding.
    """
    calls = conn.execute(select(Call.id, Call.config, Call.created_at)
                         .where(Call.workflow == "project")
                         .order_by(Call.created_at, Call.id)).all()
    if call is None:  # the next project call, not yet created
        prior = list(calls)
    else:
        me = conn.execute(select(Call.created_at).where(Call.id == call.id)).scalar()
        if me is None:
            return {}
        prior = [c for c in calls if (c.created_at, c.id) < (me, call.id)]
    here = len(prior)
    reach = {c.id: (c.config.get("assessment") or {}).get("bar_calls_after_failure", 2)
             for c in prior}
    fail = {c.id: (c.config.get("assessment") or {}).get("fail_grade", "不合格") for c in prior}
    barring = [c.id for i, c in enumerate(prior) if here - i <= reach[c.id]]
    if not barring:
        return {}
    out: dict[str, str] = {}
    for r in conn.execute(select(Application.society_id, Application.id, Application.call_id)
                          .where(Application.call_id.in_(barring),
                                 Application.state == "terminated")
                          .order_by(Application.id)):
        out.setdefault(r.society_id, f"project {r.id} of call {r.call_id} was terminated "
                                     f"(bars the next {reach[r.call_id]} call(s))")
    for r in conn.execute(select(Application.society_id, AssessmentRecord.application_id,
                                 AssessmentRecord.call_id, AssessmentRecord.checkpoint,
                                 AssessmentRecord.grade)
                          .join(Application, Application.id == AssessmentRecord.application_id)
                          .where(AssessmentRecord.call_id.in_(barring))
                          .order_by(AssessmentRecord.application_id)):
        if r.grade == fail[r.call_id]:
            out.setdefault(r.society_id, f"project {r.application_id} of call {r.call_id} failed "
                                         f"its {r.checkpoint} assessment ({r.grade}; bars the "
                                         f"next {reach[r.call_id]} call(s))")
    return out
