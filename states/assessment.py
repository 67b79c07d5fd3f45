"""Funding and performance assessment (绩效考核: 中期检查, 结题验收).

`fund` confirms the grant and writes its payment plan; `open_assessment` takes
each funded (or continued) project to its next checkpoint, whose report is due
on the checkpoint's date; grades (on the call's scale) are imported as an
administrative act (`lifecycle.acts.assessing`), and `assess` moves the graded on.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from lifecycle.core.models import AssessmentRecord
from lifecycle.rules import payments
from notifications.reasons import Reason
from states.names import ADJUSTED, ASSESSED, ASSESSMENT_DUE, AWARDED, CONTINUED, FUNDED
from states.roles import APPROVER, COORDINATOR, OFFICER, SCHEDULER
from states.spec import Context, Move, Notify, Schedule, State


def next_checkpoint(call, current: str | None):
    """The checkpoint after `current` (the first when None), or None after the last."""
    points = call.checkpoints()
    if current is None:
        return points[0] if points else None
    ids = [c.id for c in points]
    if current not in ids or ids.index(current) + 1 >= len(ids):
        return None
    return points[ids.index(current) + 1]


def report_due(call, _entered: datetime, checkpoint: str) -> datetime:
    return next(c.report_due for c in call.checkpoints() if c.id == checkpoint)


# --- conditions -------------------------------------------------------------

def _next(app, ctx: Context):
    return next_checkpoint(ctx.call, app.checkpoint if app.state != FUNDED else None)


def has_next_checkpoint(app, ctx: Context) -> str | None:
    return Reason("all_assessed") if _next(app, ctx) is None else None


def has_grade(app, _ctx: Context) -> str | None:
    return None if app.assessment_grade else "no assessment grade recorded"


# --- decisions --------------------------------------------------------------

def enter_next_checkpoint(app, ctx: Context) -> dict:
    """The checkpoint the project enters; the last one's grade is cleared."""
    return {"checkpoint": _next(app, ctx).id, "assessment_score": None, "assessment_grade": None}


# --- effects ----------------------------------------------------------------

def plan_payments(conn, ctx: Context, apps) -> None:
    """The grant's instalments; those released on award are due at once."""
    payments.plan(conn, ctx.call, [(a.id, a.granted_amount or 0) for a in apps], ctx.now,
                  ctx.actor)


def open_records(conn, ctx: Context, apps) -> None:
    """One assessment record per project and checkpoint, to take its report and grade."""
    conn.execute(insert(AssessmentRecord), [
        {"call_id": ctx.call.id, "application_id": a.id,
         "checkpoint": ctx.updates[a.id]["checkpoint"]} for a in apps])


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "fund": "确认资助 fund",
    "open_assessment": "启动绩效考核 open the assessment",
    "assess": "录入考核结果 assess",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "report_due": "报告提交截止 the report is due",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = (
    State(FUNDED, "已资助 funded", notify=(Notify("funded"),)),
    State(ASSESSMENT_DUE, "待考核 assessment due", notify=(Notify("report_requested"),),
          schedule=(Schedule("report_due", report_due, fires="assess", per="checkpoint"),)),
    State(ASSESSED, "已考核 assessed", notify=(Notify("assessed"),)),
)

MOVES = (
    Move("fund", (AWARDED,), FUNDED, effects=(plan_payments,),
         help="confirm the grant and write its payment plan",
         who=(APPROVER,)),
    Move("open_assessment", (FUNDED, CONTINUED, ADJUSTED), ASSESSMENT_DUE,
         (has_next_checkpoint,), decide=(enter_next_checkpoint,), effects=(open_records,),
         help="ask for the reports of the next checkpoint (mid-term, final)",
         who=(OFFICER,)),
    Move("assess", (ASSESSMENT_DUE,), ASSESSED, (has_grade,), who=(COORDINATOR, SCHEDULER),
         help="take the recorded grades"),
)
