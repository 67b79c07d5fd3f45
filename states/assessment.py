"""Funding and performance assessment (绩效考核).

Awarded projects are funded; when assessment opens the society owes a report
by the call's due date; grades (on the call's scale) are recorded as an
administrative act, and `assess` moves the graded ones on.
"""
from __future__ import annotations

from datetime import datetime

from states.spec import ADMIN, SCHEDULER, Context, Move, Notify, Schedule, State


def report_due(call, _entered: datetime) -> datetime:
    return call.calendar.assessment_due


def has_grade(app, _ctx: Context) -> str | None:
    return None if app.assessment_grade else "no assessment grade recorded"


STATES = (
    State("funded", "已资助 funded", notify=(Notify("funded"),)),
    State("assessment_due", "待考核 assessment due", notify=(Notify("report_requested"),),
          schedule=(Schedule("report_due", report_due, fires="assess"),)),
    State("assessed", "已考核 assessed", notify=(Notify("assessed"),)),
)

MOVES = (
    Move("fund", ("awarded",), "funded", help="confirm the grant"),
    Move("open_assessment", ("funded",), "assessment_due", help="ask for performance reports"),
    Move("assess", ("assessment_due",), "assessed", (has_grade,), who=(ADMIN, SCHEDULER),
         help="take the recorded grades"),
)
