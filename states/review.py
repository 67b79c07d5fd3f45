"""Expert review (专家评审): assigned experts score each eligible application.

Assignment, recusal, reassignment, score sheets and panel decisions are
administrative acts (`lifecycle.acts.reviewing`, `lifecycle.acts.assignment`,
`lifecycle.acts.scoresheets`); this table says when an application may enter and
leave review. Only live assignments count: recused experts and experts taken
off by `review reassign` do not.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from lifecycle.core.models import Assignment
from notifications.reasons import Reason
from states.names import ELIGIBLE, REVIEWED, UNDER_REVIEW
from states.roles import COORDINATOR, SCHEDULER
from states.spec import Context, Move, Notify, Schedule, State

IN_REVIEW = (ELIGIBLE, UNDER_REVIEW)
"""Applications experts are assigned to (and told at once when already under review)."""

SCORING = (UNDER_REVIEW, REVIEWED)
"""Applications whose score sheets and panel decisions are taken (until ranked)."""


def review_due(call, _entered: datetime) -> datetime:
    return call.calendar.review_due


# --- conditions -------------------------------------------------------------

def has_enough_experts(app, ctx: Context) -> str | None:
    have = ctx.data["assigned"].get(app.id, 0)
    need = ctx.call.review.min_reviews
    return Reason("fewer_experts", need=need) if have < need else None


def has_min_reviews(app, ctx: Context) -> str | None:
    have = ctx.data["submitted"].get(app.id, 0)
    need = ctx.call.review.min_reviews
    return Reason("fewer_reviews", need=need) if have < need else None


# --- batch loaders ----------------------------------------------------------

def load_review_counts(conn, ctx: Context, apps) -> None:
    """Assigned and submitted reviews per application of the call, in one query."""
    rows = conn.execute(
        select(Assignment.application_id, Assignment.status, func.count())
        .where(Assignment.call_id == ctx.call.id,
               Assignment.status.in_(("assigned", "submitted")))
        .group_by(Assignment.application_id, Assignment.status))
    assigned: dict[str, int] = {}
    submitted: dict[str, int] = {}
    for app_id, status, n in rows:
        assigned[app_id] = assigned.get(app_id, 0) + n
        if status == "submitted":
            submitted[app_id] = n
    ctx.data["assigned"], ctx.data["submitted"] = assigned, submitted


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "start_review": "开始评审 start the review",
    "close_review": "结束评审 close the review",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "reviews_due": "评审截止 reviews due",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = (
    State(UNDER_REVIEW, "评审中 under review",
          notify=(Notify("review_assigned", to="experts"),),
          schedule=(Schedule("reviews_due", review_due, fires="close_review"),)),
    State(REVIEWED, "评审完成 reviewed"),
)

MOVES = (
    Move("start_review", (ELIGIBLE,), UNDER_REVIEW, (has_enough_experts,),
         prepare=(load_review_counts,), help="send applications to their assigned experts",
         who=(COORDINATOR,)),
    Move("close_review", (UNDER_REVIEW,), REVIEWED, (has_min_reviews,),
         who=(COORDINATOR, SCHEDULER), prepare=(load_review_counts,),
         help="close review for applications with enough scores"),
)
