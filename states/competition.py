"""Fair competition (公平竞争): aggregate the scores, rank per category, cut by budget.

`rank` computes, for the whole call at once, each application's score, rank
and recommendation with the reason, using `lifecycle.rules.ranking`. A call with an
application whose reviewers disagree beyond `review.spread_flag` waits whole
until a panel decision is recorded for it (budgets are shared, so a partial
ranking would not be fair).
"""
from __future__ import annotations

from lifecycle.rules import ranking
from states.names import (
    DECLARED,
    DRAFT,
    ELIGIBLE,
    INELIGIBLE,
    LAPSED,
    NOT_PROPOSED,
    RANKED,
    REJECTED,
    REVIEWED,
    UNDER_REVIEW,
    WITHDRAWN,
)
from states.roles import APPROVER
from states.spec import Context, Move, State

RANKABLE = (REVIEWED,)
"""The states an application is ranked from."""

UNCOMMITTED = (ELIGIBLE, UNDER_REVIEW, REVIEWED, REJECTED, NOT_PROPOSED, INELIGIBLE, WITHDRAWN,
               LAPSED, DRAFT, DECLARED)
"""States whose applications hold no grant of the call's budget: not yet ranked, or out."""


def load_ranking(conn, ctx: Context, apps) -> None:
    """Rank every reviewed application of the call together (ranking is a whole-call act)."""
    updates, waiting = ranking.rank_call(conn, ctx.call, [a.id for a in apps], RANKABLE,
                                         UNCOMMITTED)
    ctx.data["ranking"], ctx.data["ranking_waits"] = updates, waiting


def can_be_ranked(app, ctx: Context) -> str | None:
    if app.id in ctx.data["ranking"]:
        return None
    return ctx.data["ranking_waits"].get(app.id, "no score to rank")


def ranking_terms(app, ctx: Context) -> dict:
    """The application's score, rank, recommendation and reason from the call's ranking."""
    return ctx.data["ranking"][app.id]


STATES = (
    State(RANKED, "已排序 ranked"),
)

MOVES = (
    Move("rank", RANKABLE, RANKED, (can_be_ranked,), prepare=(load_ranking,),
         decide=(ranking_terms,),
         help="aggregate scores, rank per category, cut by the budget",
         who=(APPROVER,)),
)
