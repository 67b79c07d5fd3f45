"""Aggregation, ranking and the budget cut, for a whole call at once.

Kept apart from the engine so the rule can be read (and tested) alone:
score = mean of the experts' totals (dropping the highest and lowest when
there are `drop_extremes_from` or more); rank per category by score, then
higher minimum score, then earlier declaration, then id, never database order;
recommend while the pass mark is met and the category's budget lasts.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.callconfig import CallConfig
from lifecycle.models import Application, Assignment


def aggregate(totals: list[float], drop_extremes_from: int) -> float:
    """The application's score from its experts' totals (order does not matter)."""
    values = sorted(totals)
    if len(values) >= drop_extremes_from:
        values = values[1:-1]
    return round(sum(values) / len(values), 2)


def rank_call(conn: Connection, call: CallConfig, app_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Score, rank and recommend the given applications; returns column updates per id."""
    wanted = set(app_ids)
    totals: dict[str, list[float]] = defaultdict(list)
    for app_id, total in conn.execute(
            select(Assignment.application_id, Assignment.total)
            .where(Assignment.call_id == call.id, Assignment.status == "submitted")):
        if app_id in wanted and total is not None:
            totals[app_id].append(total)
    apps = conn.execute(
        select(Application.id, Application.category, Application.requested_amount,
               Application.declared_at)
        .where(Application.call_id == call.id, Application.state == "reviewed")).all()
    by_category: dict[str, list[tuple]] = defaultdict(list)
    for a in apps:
        if a.id in totals:
            score = aggregate(totals[a.id], call.review.drop_extremes_from)
            by_category[a.category].append((-score, -min(totals[a.id]), a.declared_at, a.id, a))
    updates: dict[str, dict[str, Any]] = {}
    for category in call.categories:
        rows = sorted(by_category.get(category.id, []))
        left = category.budget if category.budget is not None else call.budget_total
        exhausted_at = None
        for rank, (neg_score, _m, _d, app_id, a) in enumerate(rows, start=1):
            score = -neg_score
            grant = int(round(a.requested_amount * call.review.grant_percent / 100))
            if score < call.review.pass_mark:
                rec, reason = False, f"below pass mark {call.review.pass_mark:g}"
            elif exhausted_at is not None or grant > left:
                exhausted_at = exhausted_at or rank
                rec, reason = False, f"category budget exhausted at rank {exhausted_at}"
            else:
                left -= grant
                rec, reason = True, f"rank {rank} in {category.id}, within budget"
            updates[app_id] = {"score": score, "rank": rank, "recommended": rec,
                               "granted_amount": grant if rec else 0, "decision_reason": reason}
    return updates
