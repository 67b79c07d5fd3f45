"""Star rating, stage 1: declaration with a self-evaluation, and the formal check.

A society declares by filing its self-evaluation on the call's indicator sheet
(imported by `starfund star declare`, which refuses incomplete sheets); the
formal check at close refuses societies not in good standing, barred by a
failed project, or barred by a revoked star, and, when the call's classes share
the reward pool (`star.classes`), societies of no class of the call.
"""
from __future__ import annotations

from sqlalchemy import func, select

from lifecycle.core.models import Call, StarRecord, StarScore, StarStatus
from lifecycle.rules.eligibility import barred_societies
from notifications.reasons import Reason
from states.declaration import (
    declaration_states,
    declaration_window_closed,
    declaration_window_open,
    not_barred,
    society_in_good_standing,
)
from states.names import DECLARED, DRAFT, ELIGIBLE, INELIGIBLE, LAPSED, WITHDRAWN
from states.outcome import BARS_NEXT_CALLS
from states.roles import OFFICER, SCHEDULER, SOCIETY
from states.spec import Context, Move

# --- conditions -------------------------------------------------------------


def self_evaluation_complete(app, ctx: Context) -> str | None:
    have = ctx.data["sheet_counts"].get(app.id, (0, 0))[0]
    need = len(ctx.call.star.indicators())
    return None if have >= need else Reason("self_evaluation_incomplete", have=have, need=need)


def class_is_rated(app, ctx: Context) -> str | None:
    """Classes that share the reward pool rate only their own societies."""
    if ctx.call.star.sheet_for(app.society_class) is not None:
        return None
    listed = ", ".join(k.id for k in ctx.call.star.classes)
    who = Reason.literal(f"society class {app.society_class}", f"{app.society_class}类学会") \
        if app.society_class else Reason.literal("a society of no class", "未分类的学会")
    return Reason("class_not_rated", call=ctx.call.id, listed=listed, who=who)


# --- batch loaders ----------------------------------------------------------

def load_sheet_counts(conn, ctx: Context, apps) -> None:
    """Per application: indicators self-scored and indicators checked, in one query."""
    rows = conn.execute(select(StarScore.application_id, func.count(),
                               func.count(StarScore.checked_score))
                        .where(StarScore.call_id == ctx.call.id)
                        .group_by(StarScore.application_id))
    ctx.data["sheet_counts"] = {a: (n, checked) for a, n, checked in rows}


def load_star_barred(conn, ctx: Context, apps) -> None:
    """Barred: a failed project (as for the next project call), or a star revoked for cause
    before this call, within the call's `star.bar_calls_after_revocation` star calls."""
    barred = barred_societies(conn, BARS_NEXT_CALLS, ctx.call, kinds=ctx.history.bars)
    calls = conn.execute(select(Call.id, Call.created_at).where(Call.workflow == ctx.call.workflow)
                         .order_by(Call.created_at, Call.id)).all()
    me = next((c for c in calls if c.id == ctx.call.id), None)
    reach = ctx.call.star.bar_calls_after_revocation
    if me is not None and reach:
        for r in conn.execute(select(StarRecord).where(StarRecord.status == StarStatus.REVOKED)
                              .order_by(StarRecord.ended_at)):
            if r.ended_at is None or r.ended_at >= me.created_at:
                continue
            since = [c for c in calls if r.ended_at < c.created_at
                     and (c.created_at, c.id) < (me.created_at, me.id)]
            if len(since) < reach:
                barred.setdefault(r.society_id, f"star of {r.call_id} revoked on "
                                                f"{r.ended_at:%Y-%m-%d} ({r.end_kind}: "
                                                f"{r.end_reason}; bars the next {reach} "
                                                f"star call(s))")
    ctx.data["barred"] = barred


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "submit": "提交自评 submit the self-evaluation",
    "withdraw": "撤回自评 withdraw",
    "close_declaration": "截止申报并形式审查 close declarations (formal check)",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "declaration_closes": "申报截止 declarations close",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = declaration_states("草稿 self-evaluation filed", "star_declared")

MOVES = (
    Move("submit", (DRAFT,), DECLARED, (declaration_window_open, self_evaluation_complete),
         prepare=(load_sheet_counts,), help="declare a filed self-evaluation",
         who=(SOCIETY, OFFICER)),
    Move("withdraw", (DRAFT, DECLARED), WITHDRAWN, help="the society withdraws",
         who=(SOCIETY, OFFICER)),
    Move("close_declaration", (DECLARED,), ELIGIBLE,
         (declaration_window_closed, society_in_good_standing, not_barred,
          self_evaluation_complete, class_is_rated), who=(OFFICER, SCHEDULER),
         prepare=(load_star_barred, load_sheet_counts),
         help="close the window and run the formal check"),
    Move("close_declaration", (DECLARED,), INELIGIBLE, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
    Move("close_declaration", (DRAFT,), LAPSED, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
)
