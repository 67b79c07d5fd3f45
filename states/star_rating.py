"""Star rating, stage 2: the association's check, the experts' review, the star level.

The checked score per indicator is recorded by `starfund star check`; review
starts once every indicator is checked. Experts score every indicator
(`starfund star review`); each indicator's final score is
checked * (1 - w) + mean(experts) * w with w = `star.expert_weight`, the
total is their sum (each weighted by weight / maximum when the sheet gives
weights), and the level follows from `star.thresholds`. A society of a class
the call lists (`star.classes`) is rated on its class's maxima, weights and
thresholds, and its reward comes from its class's share of the pool, cut pro
rata when the class's rewards would exceed it; the reason names the class.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, func, select, update

from lifecycle.core import audit
from lifecycle.core.callconfig import ClassSheet
from lifecycle.core.models import Application, StarReview, StarScore
from notifications.reasons import Reason
from states.names import ELIGIBLE, RATED, UNDER_REVIEW, UNRATED
from states.roles import COORDINATOR, SCHEDULER
from states.spec import Context, Move, Schedule, State
from states.star_declaration import load_sheet_counts


def review_due(call, _entered: datetime) -> datetime:
    return call.calendar.review_due


def stars(level: int) -> Reason:
    return Reason.literal("★" * level) if level else Reason.literal("no star", "无星")


# --- conditions -------------------------------------------------------------

def checked_scores_complete(app, ctx: Context) -> str | None:
    checked = ctx.data["sheet_counts"].get(app.id, (0, 0))[1]
    need = len(ctx.call.star.indicators())
    return None if checked >= need else Reason("checked_incomplete", have=checked, need=need)


def enough_expert_reviews(app, ctx: Context) -> str | None:
    have = len(ctx.data["star_reviews"].get(app.id, []))
    need = ctx.call.star.min_experts
    return None if have >= need else Reason("star_reviews_incomplete", have=have, need=need)


def _totals(app, ctx: Context) -> tuple[float, int] | None:
    return ctx.data["star_totals"].get(app.id)


def reaches_a_star(app, ctx: Context) -> str | None:
    found = _totals(app, ctx)
    if found is None:
        return Reason("not_rated_class")
    total, level = found
    return None if level else Reason("reaches_no_star", total=total)


def below_one_star(app, ctx: Context) -> str | None:
    found = _totals(app, ctx)
    if found is None:
        return Reason("not_rated_class")
    total, level = found
    return Reason("reaches_stars", total=total, level=level) if level else None


# --- decisions --------------------------------------------------------------

def _by_rule(sheet: ClassSheet) -> Reason | str:
    return Reason("by_class_rule", cls=sheet.cls, thresholds=sheet.thresholds_text()) \
        if sheet.cls else ""


def rating_terms(app, ctx: Context) -> dict:
    """The total, the star level (0: none), its reward and the reason (naming the class)."""
    total, level = ctx.data["star_totals"][app.id]
    sheet = ctx.data["star_sheets"][app.id]
    reward, note = ctx.data["star_rewards"].get(app.id, (0, ""))
    checked, experts = ctx.data["star_parts"][app.id]
    bound = min(sheet.thresholds.values())
    why = Reason("star_rated", stars=stars(level), level=level, total=total, checked=checked,
                 experts=experts, rule=_by_rule(sheet), reward=reward, note=note) if level else \
        Reason("no_star", total=total, bound=bound, rule=_by_rule(sheet))
    return {"score": total, "star_level": level, "granted_amount": reward,
            "decision_reason": why}


# --- batch loaders and effects ------------------------------------------------

def load_star_totals(conn, ctx: Context, apps) -> None:
    """Final indicator scores, totals, levels and rewards for the batch, each on its class's
    sheet: three queries."""
    sheets = {a.id: ctx.call.star.sheet_for(a.society_class, ctx.call.budget_total)
              for a in apps}
    wanted = {a for a, sheet in sheets.items() if sheet is not None}
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
        sheet = sheets[app_id]
        marks = reviews.get(app_id, [])
        final = {}
        for ind in ctx.call.star.indicators():
            c = checked[app_id].get(ind, 0.0)
            e = sum(s[ind] for s in marks) / len(marks) if marks else c
            final[ind] = round(c * (1 - w) + e * w, 2)
        total = sheet.total(final)
        finals[app_id], totals[app_id] = final, (total, sheet.level_of(total))
        parts[app_id] = (sheet.total(checked[app_id]),
                         round(sum(sheet.points(s) for s in marks) / len(marks), 1)
                         if marks else 0.0)
    ctx.data.update(star_reviews=reviews, star_finals=finals, star_totals=totals,
                    star_parts=parts, star_sheets=sheets)
    ctx.data["star_rewards"] = _rewards(conn, ctx, apps, sheets, totals, reviews)


def _rewards(conn, ctx: Context, apps, sheets: dict[str, ClassSheet | None],
             totals: dict[str, tuple[float, int]], reviews: dict[str, list[dict]]
             ) -> dict[str, tuple[int, str]]:
    """Each rated application's reward and a note: the level's reward, cut pro rata within a
    class whose share of the pool the class's rewards (earlier ones of the call included)
    would exceed."""
    rewards = ctx.call.star.rewards
    rated = [a for a in apps if a.id in totals and totals[a.id][1]
             and len(reviews.get(a.id, [])) >= ctx.call.star.min_experts]
    out = {a.id: (rewards.get(totals[a.id][1], 0), "") for a in rated}
    pooled = [a for a in rated if sheets[a.id].pool is not None]
    if not pooled:
        return out
    batch = [a.id for a in apps]
    given = dict(conn.execute(
        select(Application.society_class, func.coalesce(func.sum(Application.granted_amount), 0))
        .where(Application.call_id == ctx.call.id, Application.id.notin_(batch))
        .group_by(Application.society_class)).all())
    by_class: dict[str, list] = defaultdict(list)
    for a in pooled:
        by_class[a.society_class].append(a)
    for cls, members in by_class.items():
        sheet = sheets[members[0].id]
        left = max(0, sheet.pool - int(given.get(cls, 0)))
        asked = sum(out[a.id][0] for a in members)
        if asked <= left:
            continue
        share = left / asked
        for a in members:
            full = out[a.id][0]
            out[a.id] = (int(full * share),
                         f" ({full:,} cut to {share:.1%}: the {cls} rewards would exceed its "
                         f"pool {sheet.pool:,}, {sheet.share:g}% of {ctx.call.budget_total:,})")
    return out


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

TRIGGERS = {
    "start_review": "开始评审 start the review",
    "close_review": "结束评审并评定星级 close the review and rate",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "reviews_due": "评审截止 reviews due",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

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
