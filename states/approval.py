"""Approval on the pass mark within the budget (一次性资助的审批): no ranking, no cut lists.

A reviewed application whose experts' score reaches the call's pass mark is approved while
the budget lasts, in the order the applications were declared (first declared, first served;
ties by id); the others are not proposed, each with its reason. The whole call is decided
at once (`load_approval`), so the outcome never depends on how a batch is chunked.
"""
from __future__ import annotations

from sqlalchemy import select

from lifecycle.core.models import Application
from lifecycle.rules import ranking
from notifications.reasons import Reason
from states.names import (
    DECLARED,
    DRAFT,
    ELIGIBLE,
    INELIGIBLE,
    LAPSED,
    NOT_PROPOSED,
    PROPOSED,
    REVIEWED,
    UNDER_REVIEW,
    WITHDRAWN,
)
from states.roles import APPROVER
from states.spec import Context, Move

UNCOMMITTED = (DRAFT, DECLARED, WITHDRAWN, LAPSED, ELIGIBLE, INELIGIBLE, UNDER_REVIEW, REVIEWED,
               NOT_PROPOSED)
"""States whose applications hold no grant of the call's budget."""


def load_approval(conn, ctx: Context, apps) -> None:
    """Decide every reviewed application of the call: pass mark, then budget in declared order."""
    wanted = set(apps.ids())
    aggs = ranking.call_aggregates(conn, ctx.call)
    left = ctx.call.budget_total - sum(ranking.committed_budget(conn, ctx.call,
                                                                UNCOMMITTED).values())
    mark = ctx.call.review.pass_mark
    out: dict[str, dict] = {}
    rows = conn.execute(select(Application.id, Application.requested_amount)
                        .where(Application.call_id == ctx.call.id,
                               Application.state == REVIEWED)
                        .order_by(Application.declared_at, Application.id))
    for app_id, requested in rows:
        if app_id not in wanted or app_id not in aggs:
            continue
        score, grant = aggs[app_id].score, ranking.grant_of(ctx.call, requested)
        if score < mark:
            out[app_id] = {"score": score, "recommended": False, "granted_amount": 0,
                           "decision_reason": Reason("approval_below_pass", score=score,
                                                     mark=mark)}
        elif grant > left:
            out[app_id] = {"score": score, "recommended": False, "granted_amount": 0,
                           "decision_reason": Reason("approval_budget_used", score=score,
                                                     grant=grant, left=left)}
        else:
            left -= grant
            out[app_id] = {"score": score, "recommended": True, "granted_amount": grant,
                           "decision_reason": Reason("approval_within", score=score, mark=mark,
                                                     grant=grant, left=left)}
    ctx.data["approval"] = out


def has_score(app, ctx: Context) -> str | None:
    return None if app.id in ctx.data["approval"] else "no score yet (reviews not submitted)"


def approved(app, ctx: Context) -> str | None:
    terms = ctx.data["approval"].get(app.id)
    return None if terms and terms["recommended"] else "not approved"


def approval_terms(app, ctx: Context) -> dict:
    return ctx.data["approval"][app.id]


TRIGGERS = {
    "approve": "审定通过 approve",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""

STATES = ()
"""Its destinations are the award stage's (proposed, not proposed)."""

MOVES = (
    Move("approve", (REVIEWED,), PROPOSED, (has_score, approved), prepare=(load_approval,),
         decide=(approval_terms,), who=(APPROVER,),
         help="approve on the pass mark within the budget, in the order declared"),
    Move("approve", (REVIEWED,), NOT_PROPOSED, (has_score,), prepare=(load_approval,),
         decide=(approval_terms,), who=(APPROVER,)),
)
