"""Fair competition (公平竞争): aggregate the scores, rank per category, cut by budget.

`rank` computes, for the whole call at once, each application's score, rank
and recommendation with the reason, using `lifecycle.ranking`.
"""
from __future__ import annotations

from lifecycle import ranking
from states.spec import Context, Move, State


def load_ranking(conn, ctx: Context, apps) -> None:
    """Rank every reviewed application of the call together (ranking is a whole-call act)."""
    ctx.updates.update(ranking.rank_call(conn, ctx.call, [a.id for a in apps]))


def has_score(app, ctx: Context) -> str | None:
    return None if app.id in ctx.updates else "no score to rank"


STATES = (
    State("ranked", "已排序 ranked"),
)

MOVES = (
    Move("rank", ("reviewed",), "ranked", (has_score,), prepare=(load_ranking,),
         help="aggregate scores, rank per category, cut by the budget"),
)
