"""Star rating, stage 2: the association's check, the experts' review, the star level.

The checked score per indicator is recorded by `starfund star check`; review
starts once every indicator is checked. Experts score every indicator
(`starfund star review`); each indicator's final score is
checked * (1 - w) + mean(experts) * w with w = `star.expert_weight`, the
total is their sum, and the level follows from `star.thresholds`.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, select, update

from lifecycle.core import audit
from lifecycle.core.models import StarReview, StarScore
from states.names import ELIGIBLE, RATED, UNDER_REVIEW, UNRATED
from states.roles import COORDINATOR, SCHEDULER
from states.spec import Context, Move, Schedule, State
from states.star_declaration import load_sheet_counts


def review_due(call, _entered: datetime) -> datetime:
    return call.calendar.review_due


def stars(level: int) -> str:
    return "★" * level if level else "no star"


# --- conditions -------------------------------------------------------------

def checked_scores_complete(app, ctx: Context) -> str | None:
    checked = ctx.data["sheet_counts"].get(app.id, (0, 0))[1]
    need = len(ctx.call.star.indicators())
    return None if checked >= need else f"checked scores for {checked} of {need} indicators"


def enough_expert_reviews(app, ctx: Context) -> str | None:
    have = len(ctx.data["star_reviews"].get(app.id, []))
    need = ctx.call.star.min_experts
    return None if have >= need else f"{have} of {need} expert reviews"


def reaches_a_star(app, ctx: Context) -> str | None:
    total, level = ctx.data["star_totals"][app.id]
    return None if level else f"total {total:g} reaches no star"


def below_one_star(app, ctx: Context) -> str | None:
    total, level = ctx.data["star_totals"][app.id]
    return f"total {total:g} reaches {level} star(s)" if level else None


# --- decisions --------------------------------------------------------------

def rating_terms(app, ctx: Context) -> dict:
    """The total, the star level (0: none), its reward and the reason."""
    total, level = ctx.data["star_totals"][app.id]
    reward = ctx.call.star.rewards.get(level, 0) if level else 0
    checked, experts = ctx.data["star_parts"][app.id]
    bound = min(ctx.call.star.thresholds.values())
    why = (f"{stars(level)} ({level}): total {total:g} (checked {checked:g}, experts {experts:g}); "
           f"reward {reward:,}") if level else \
        f"no star: total {total:g} below one star ({bound:g})"
    return {"score": total, "star_level": level, "granted_amount": reward,
            "decision_reason": why}


# --- batch loaders and effects ------------------------------------------------

def load_star_totals(conn, ctx: Context, apps) -> None:
    """Final indicator scores, totals and levels for the batch: two queries."""
    wanted = {a.id for a in apps}
    checked: dict[str, dict[str, float]] = defaultdict(dict)
    for r in conn.execute(select(StarScore.application_id, StarScore.indicator,
                                 StarScore.checked_score).where(StarScore.call_id == ctx.call.id)):
        if r.application_id in wanted:
            checked[r.application_id][r.indicator] = r.checked_score or 0.0
    reviews: dict[str, list[dict]] = defaultdict(list)
    for r in conn.execute(select(StarReview.application_id, StarReview.scores)
                          .where(StarReview.call_id == ctx.call.id)
                          .order_by(StarReview.application_id, StarReview.expert_id)):
        if r.application_id in wanted:
            reviews[r.application_id].append(r.scores)
    w = ctx.call.star.expert_weight
    finals, totals, parts = {}, {}, {}
    for app_id in wanted:
        sheets = reviews.get(app_id, [])
        final = {}
        for ind in ctx.call.star.indicators():
            c = checked[app_id].get(ind, 0.0)
            e = sum(s[ind] for s in sheets) / len(sheets) if sheets else c
            final[ind] = round(c * (1 - w) + e * w, 2)
        total = round(sum(final.values()), 1)
        finals[app_id], totals[app_id] = final, (total, ctx.call.star.level_of(total))
        parts[app_id] = (round(sum(checked[app_id].values()), 1),
                         round(sum(sum(s.values()) for s in sheets) / len(sheets), 1)
                         if sheets else 0.0)
    ctx.data.update(star_reviews=reviews, star_finals=finals, star_totals=totals,
                    star_parts=parts)


def save_final_scores(conn, ctx: Context, apps) -> None:
    rows = [{"b_app": a.id, "b_ind": ind, "final_score": v}
            for a in apps for ind, v in ctx.data["star_finals"][a.id].items()]
    conn.execute(update(StarScore).where(StarScore.application_id == bindparam("b_app"),
                                         StarScore.indicator == bindparam("b_ind"))
                 .values(final_score=bindparam("final_score")), rows)
    audit.record(conn, ctx.actor, [audit.Event("star_final_scores", ctx.call.id, a.id, payload={
        "final": ctx.data["star_finals"][a.id], "total": ctx.data["star_totals"][a.id][0],
        "level": ctx.data["star_totals"][a.id][1]}) for a in apps], at=ctx.now)


# --- the table --------------------------------------------------------------

STATES = (
    State(UNDER_REVIEW, "专家评审中 under expert review",
          schedule=(Schedule("reviews_due", review_due, fires="close_review"),)),
    State(RATED, "已评定星级 rated"),
    State(UNRATED, "未达星级 below one star"),
)

_T = (load_star_totals,)
MOVES = (
    Move("start_review", (ELIGIBLE,), UNDER_REVIEW, (checked_scores_complete,),
         prepare=(load_sheet_counts,), help="send checked self-evaluations to the experts",
         who=(COORDINATOR,)),
    Move("close_review", (UNDER_REVIEW,), RATED, (enough_expert_reviews, reaches_a_star),
         who=(COORDINATOR, SCHEDULER), prepare=_T, decide=(rating_terms,),
         effects=(save_final_scores,), help="total the scores and find each star level"),
    Move("close_review", (UNDER_REVIEW,), UNRATED, (enough_expert_reviews, below_one_star),
         who=(COORDINATOR, SCHEDULER), prepare=_T, decide=(rating_terms,),
         effects=(save_final_scores,)),
)
