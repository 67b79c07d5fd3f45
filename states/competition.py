"""Fair competition (公平竞争): aggregate the scores, rank per category, cut by budget.

`rank` computes, for the whole call at once, each application's score, rank
and recommendation with the reason, using `lifecycle.rules.ranking` (per class
and category in a call with classes, with any support bonus added and said
so). A call with an application whose reviewers disagree beyond
`review.spread_flag` waits whole until a panel decision is recorded for it
(budgets are shared, so a partial ranking would not be fair).

Steady support: `fund_continuation` takes an eligible declaration that
continues an outstanding earlier project (its `continues` column), under a
support rule with `continue_without_competing`, straight to funding from its
budget, without review and ranking; the others stay eligible and compete.
"""
from __future__ import annotations

from lifecycle.rules import ranking, support
from notifications.reasons import Reason
from states.declaration import load_support, record_support
from states.names import (
    CONTINUING,
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
from states.roles import APPROVER, OFFICER
from states.spec import Context, Move, Notify, State

RANKABLE = (REVIEWED,)
"""The states an application is ranked from."""

UNCOMMITTED = (ELIGIBLE, UNDER_REVIEW, REVIEWED, REJECTED, NOT_PROPOSED, INELIGIBLE, WITHDRAWN,
               LAPSED, DRAFT, DECLARED)
"""States whose applications hold no grant of the call's budget: not yet ranked, or out."""

DECIDED = (RANKED, CONTINUING)
"""Applications the leadership decides on (`propose`): ranked, or continued without competing."""


def load_ranking(conn, ctx: Context, apps) -> None:
    """Rank every reviewed application of the call together (ranking is a whole-call act)."""
    updates, waiting, used = ranking.rank_call(conn, ctx.call, list(apps.ids()), RANKABLE,
                                               UNCOMMITTED, ctx.now, ctx.history.earns_support)
    ctx.data["ranking"], ctx.data["ranking_waits"] = updates, waiting
    ctx.data["support_used"] = used


def can_be_ranked(app, ctx: Context) -> str | None:
    if app.id in ctx.data["ranking"]:
        return None
    return ctx.data["ranking_waits"].get(app.id, "no score to rank")


def ranking_terms(app, ctx: Context) -> dict:
    """The application's score, rank, recommendation and reason from the call's ranking."""
    return ctx.data["ranking"][app.id]


# --- continuation without competing ----------------------------------------------

def _pool(app, ctx: Context) -> ranking.Pool:
    return ranking.pool_of(ctx.call, app.society_class if ctx.call.classes else "",
                           app.category)


def _continuation(app, ctx: Context) -> support.Earned | None:
    return support.continuation(ctx.data["support"].get(app.society_id, []),
                                (app.fields or {}).get("continues"))


def load_budget_left(conn, ctx: Context, apps) -> None:
    """What is left of each budget of the call, after the grants it already holds."""
    committed = ranking.committed_budget(conn, ctx.call, UNCOMMITTED)
    ctx.data["budget_left"] = {p: b - committed.get(p, 0)
                               for p, b in ranking.pool_budgets(ctx.call).items()}


def continues_outstanding_project(app, ctx: Context) -> str | None:
    earlier = (app.fields or {}).get("continues")
    if not earlier:
        return Reason("no_continuation")
    if _continuation(app, ctx) is None:
        return (f"continues {earlier}, which earns no continuation under the call's support "
                "rules (continue_without_competing and a grade it got)")
    return None


def continuation_fits_budget(app, ctx: Context) -> str | None:
    grant = ranking.grant_of(ctx.call, app.requested_amount)
    left = ctx.data["budget_left"].get(_pool(app, ctx), 0)
    if grant > left:
        return (f"continuation needs {grant:,} but the {ranking.pool_name(_pool(app, ctx))} has "
                f"{left:,} left: it competes as usual")
    return None


def continuation_terms(app, ctx: Context) -> dict:
    """Funded from its budget without competing; later continuations of the batch see less."""
    note = _continuation(app, ctx)
    grant = ranking.grant_of(ctx.call, app.requested_amount)
    pool = _pool(app, ctx)
    ctx.data["budget_left"][pool] -= grant
    ctx.data.setdefault("support_used", {})[app.id] = [note]
    return {"recommended": True, "granted_amount": grant, "score": None, "rank": None,
            "decision_reason": f"{note.text()}: {grant:,} from the {ranking.pool_name(pool)} "
                               f"({ctx.data['budget_left'][pool]:,} left)"}


TRIGGERS = {
    "rank": "汇总排序 rank",
    "fund_continuation": "延续资助 fund continuations",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""

STATES = (
    State(RANKED, "已排序 ranked"),
    State(CONTINUING, "延续资助（免于竞争） continued without competing",
          notify=(Notify("continuation_funded"),)),
)

MOVES = (
    Move("fund_continuation", (ELIGIBLE,), CONTINUING,
         (continues_outstanding_project, continuation_fits_budget),
         who=(OFFICER,),
         prepare=(load_support, load_budget_left), decide=(continuation_terms,),
         effects=(record_support,),
         help="fund declarations continuing an outstanding project, without competing"),
    Move("rank", RANKABLE, RANKED, (can_be_ranked,), prepare=(load_ranking,),
         decide=(ranking_terms,), effects=(record_support,),
         help="aggregate scores, rank per category, cut by the budget",
         who=(APPROVER,)),
)
