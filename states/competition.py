"""Fair competition (公平竞争): aggregate the scores, rank per category, cut by budget.

`rank` computes, for the whole call at once, each application's score, rank
and recommendation with the reason, using `lifecycle.acts.ranking`. A call with an
application whose reviewers disagree beyond `review.spread_flag` waits whole
until a panel decision is recorded for it (budgets are shared, so a partial
ranking would not be fair).
"""
from __future__ import annotations

from lifecycle.acts import ranking
from states.spec import Context, Move, State


def load_ranking(conn, ctx: Context, apps) -> None:
    """Rank every reviewed application of the call together (ranking is a whole-call act)."""
    updates, waiting = ranking.rank_call(conn, ctx.call, [a.id for a in apps])
    ctx.updates.update(updates)
    ctx.data["ranking_waits"] = waiting


def can_be_ranked(app, ctx: Context) -> str | None:
    if app.id in ctx.updates:
        return None
    return ctx.data["ranking_waits"].get(app.id, "no score to rank")


STATES = (
    State("ranked", "已排序 ranked"),
)

MOVES = (
    Move("rank", ("reviewed",), "ranked", (can_be_ranked,), prepare=(load_ranking,),
         help="aggregate scores, rank per category, cut by the budget"),
)
