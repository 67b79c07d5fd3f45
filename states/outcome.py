"""Dynamic management (动态管理): continue, adjust or terminate funding by the grade.

A terminated project bars its society from the next calls, as many as the call
that funded it says (`assessment.bar_calls_after_failure`).
"""
from __future__ import annotations

from sqlalchemy import select

from lifecycle.models import Application, Call
from states.spec import Context, Move, Notify, State


def grade_continues(app, ctx: Context) -> str | None:
    ok = app.assessment_grade in ctx.call.assessment.continue_grades
    return None if ok else f"grade {app.assessment_grade} does not continue"


def grade_adjusts(app, ctx: Context) -> str | None:
    cut = ctx.call.assessment.adjust_grades.get(app.assessment_grade or "")
    if cut is None:
        return f"grade {app.assessment_grade} is not adjusted"
    old = app.granted_amount or 0
    new = int(round(old * (100 - cut) / 100))
    ctx.updates[app.id] = {"granted_amount": new,
                           "decision_reason": f"grade {app.assessment_grade}: grant cut {cut:g}% "
                                              f"from {old} to {new}"}
    return None


def grade_fails(app, ctx: Context) -> str | None:
    fail = ctx.call.assessment.fail_grade
    return None if app.assessment_grade == fail else f"grade is not {fail}"


STATES = (
    State("continued", "继续资助 continued", notify=(Notify("outcome_continued"),)),
    State("adjusted", "调整资助 adjusted", notify=(Notify("outcome_adjusted"),)),
    State("terminated", "终止资助 terminated", notify=(Notify("outcome_terminated"),), final=True),
    State("completed", "已结题 completed", final=True),
)

MOVES = (
    Move("decide_outcome", ("assessed",), "continued", (grade_continues,),
         help="continue, adjust or terminate by the grade"),
    Move("decide_outcome", ("assessed",), "adjusted", (grade_adjusts,)),
    Move("decide_outcome", ("assessed",), "terminated", (grade_fails,)),
    Move("complete", ("continued", "adjusted"), "completed", help="close the project"),
)


def barred_societies(conn, call) -> dict[str, str]:
    """Societies with a terminated project in one of the calls just before `call`.

    Each failing call bars for its own `bar_calls_after_failure` later calls of
    the same workflow, counted in order of creation.
    """
    calls = conn.execute(select(Call.id, Call.config, Call.created_at)
                         .where(Call.workflow == call.workflow)
                         .order_by(Call.created_at, Call.id)).all()
    order = [c.id for c in calls]
    if call.id not in order:
        return {}
    here = order.index(call.id)
    reach = {c.id: (c.config.get("assessment") or {}).get("bar_calls_after_failure", 2)
             for c in calls}
    barring = [cid for i, cid in enumerate(order[:here]) if here - i <= reach[cid]]
    if not barring:
        return {}
    rows = conn.execute(select(Application.society_id, Application.id, Application.call_id)
                        .where(Application.call_id.in_(barring),
                               Application.state == "terminated"))
    return {r.society_id: f"project {r.id} of call {r.call_id} was terminated" for r in rows}
