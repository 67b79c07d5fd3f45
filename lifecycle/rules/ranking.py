"""Fair competition (公平竞争): aggregate the experts' totals, rank per category, cut by budget.

Kept apart from the engine and the acts so the rule can be read (and tested) alone;
which states count (the rankable ones, those holding no grant) is the caller's
(`states.competition`), since a rule spells no state name.

Aggregation, per application, from its live submitted reviews:
- optional per-expert normalisation (`review.normalise`): each expert's totals in
  the call become z-scores rescaled to the call's mean and spread, cancelling harsh
  and lenient reviewers; experts with fewer than `normalise_min_reviews` reviews
  keep their raw totals;
- with `drop_extremes_from` (default 5) reviews or more, the highest and lowest
  totals are dropped and the rest averaged; with fewer, the plain mean;
- spread = highest - lowest total; above `spread_flag` the application is flagged
  and cannot be ranked until a panel decision gives its score (`review panel`).

Ranking, per category: score (higher first), then the higher minimum total, then
the earlier declaration, then the application id: never database order.

Cut: an application is proposed when its score reaches `pass_mark` and its grant
(`grant_percent` of the request) fits what is left of its category's budget; the
cut is strict, so once one does not fit no lower-ranked one of that category is
proposed. Categories without a budget share what the call's total leaves
unallocated. With `move_leftover`, money left in any category then goes to the
best-scored applications across categories that passed but missed their budget.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application, Assignment, PanelDecision

SCALE = 100.0


def aggregate(totals: Iterable[float], drop_extremes_from: int) -> float:
    """The application's score from its experts' totals (order does not matter)."""
    values = sorted(totals)
    if len(values) >= drop_extremes_from:
        values = values[1:-1]
    return round(math.fsum(values) / len(values), 2)


def normalise(reviews: list[tuple[str, str, float]], min_reviews: int = 3
              ) -> dict[tuple[str, str], float]:
    """(expert, application) -> total as a z-score of the expert's totals, on the call's scale."""
    if not reviews:
        return {}
    everything = sorted(t for _, _, t in reviews)
    g_mean = math.fsum(everything) / len(everything)
    g_sd = math.sqrt(math.fsum((t - g_mean) ** 2 for t in everything) / len(everything))
    by_expert: dict[str, list[float]] = defaultdict(list)
    for e, _, t in reviews:
        by_expert[e].append(t)
    stats = {}
    for e, ts in by_expert.items():
        ts.sort()
        m = math.fsum(ts) / len(ts)
        sd = math.sqrt(math.fsum((t - m) ** 2 for t in ts) / len(ts))
        stats[e] = (len(ts), m, sd)
    out = {}
    for e, a, t in reviews:
        n, m, sd = stats[e]
        if n < min_reviews:
            v = t
        elif sd < 1e-9:
            v = t - m + g_mean
        else:
            v = g_mean + (t - m) / sd * g_sd
        out[(e, a)] = min(SCALE, max(0.0, v))
    return out


@dataclass(frozen=True)
class Aggregate:
    """One application's aggregated review: its score and what the flag and the cut look at."""

    application: str
    reviews: int
    score: float
    minimum: float
    spread: float
    flagged: bool
    panel: float | None = None

    @property
    def blocked(self) -> bool:
        """Flagged and still waiting for a panel decision."""
        return self.flagged and self.panel is None


def aggregates(reviews: list[tuple[str, str, float]], call: CallConfig,
               panel: dict[str, float] | None = None) -> dict[str, Aggregate]:
    """Per application: score, minimum, spread and flag, from (expert, application, total)."""
    rc = call.review
    panel = panel or {}
    used = normalise(reviews, rc.normalise_min_reviews) if rc.normalise else \
        {(e, a): t for e, a, t in reviews}
    per_app: dict[str, list[float]] = defaultdict(list)
    for (_, a), t in used.items():
        per_app[a].append(t)
    out = {}
    for a, ts in per_app.items():
        ts.sort()
        spread = round(ts[-1] - ts[0], 2)
        flagged = spread > rc.spread_flag
        score = aggregate(ts, rc.drop_extremes_from)
        p = panel.get(a)
        out[a] = Aggregate(a, len(ts), round(p, 2) if p is not None else score,
                           round(ts[0], 2), spread, flagged, p)
    return out


@dataclass(frozen=True)
class Entry:
    """What the cut needs of one application."""

    id: str
    category: str
    requested_amount: int
    declared_at: datetime
    agg: Aggregate


def grant_of(call: CallConfig, requested: int) -> int:
    """The grant proposed for a request: `review.grant_percent` of it, in whole yuan."""
    return int(round(requested * call.review.grant_percent / 100))


def _key(e: Entry) -> tuple:
    return (-e.agg.score, -e.agg.minimum, e.declared_at, e.id)


def cut(entries: list[Entry], call: CallConfig,
        committed: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Rank per category and cut by budget; returns per application the columns to write."""
    committed = committed or {}
    rc = call.review
    by_cat: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_cat[e.category].append(e)
    rank: dict[str, int] = {}
    for rows in by_cat.values():
        rows.sort(key=_key)
        for r, e in enumerate(rows, start=1):
            rank[e.id] = r
    capped = {c.id: c.budget for c in call.categories if c.budget is not None}
    shared_left = call.budget_total - sum(capped.values()) - sum(
        v for k, v in committed.items() if k not in capped)
    out: dict[str, dict[str, Any]] = {}
    missed: list[Entry] = []

    def walk(rows: list[Entry], left: int, what: str) -> int:
        stopped: tuple[int, int, str] | None = None
        for e in rows:
            s, r, grant = e.agg.score, rank[e.id], grant_of(call, e.requested_amount)
            head = f"rank {r} in {e.category}, score {s:.2f}"
            if s < rc.pass_mark:
                out[e.id] = _row(e, r, False, 0, f"{head}: below the pass mark {rc.pass_mark:g}")
            elif stopped is not None or grant > left:
                if stopped is None:
                    stopped = (r, left, e.category)
                k, at_left, cat = stopped
                out[e.id] = _row(e, r, False, 0, f"{head}: {what} exhausted at rank {k} in {cat} "
                                                 f"({at_left:,} left, {grant:,} needed)")
                missed.append(e)
            else:
                left -= grant
                out[e.id] = _row(e, r, True, grant, f"{head}: proposed, {grant:,} within the "
                                                    f"{what} ({left:,} left)")
        return left

    spent = 0
    for cat, budget in capped.items():
        left = budget - committed.get(cat, 0)
        spent += left - walk(by_cat.get(cat, []), left, "category budget")
    shared = sorted((e for c, rows in by_cat.items() if c not in capped for e in rows), key=_key)
    if shared:
        before = shared_left
        shared_left = walk(shared, shared_left, "shared budget")
        spent += before - shared_left
    if rc.move_leftover and missed:
        pool = call.budget_total - sum(committed.values()) - spent
        for e in sorted(missed, key=_key):
            grant = grant_of(call, e.requested_amount)
            if grant > pool:
                out[e.id]["decision_reason"] += f"; leftover of other categories exhausted " \
                                                f"({pool:,} left)"
                pool = -1  # strict: nobody below gets leftover either
                continue
            pool -= grant
            r = rank[e.id]
            out[e.id] = _row(e, r, True, grant, f"rank {r} in {e.category}, score "
                                                f"{e.agg.score:.2f}: proposed, {grant:,} from "
                                                f"budget left over in other categories "
                                                f"({pool:,} left)")
    return out


def _row(e: Entry, rank: int, rec: bool, grant: int, reason: str) -> dict[str, Any]:
    return {"score": e.agg.score, "rank": rank, "recommended": rec, "granted_amount": grant,
            "decision_reason": reason}


# --- the database side ----------------------------------------------------------------

def load_reviews(conn: Connection, call_id: str) -> list[tuple[str, str, float]]:
    """(expert, application, total) of every live submitted review of the call."""
    return [(r.expert_id, r.application_id, r.total) for r in conn.execute(
        select(Assignment.expert_id, Assignment.application_id, Assignment.total)
        .where(Assignment.call_id == call_id, Assignment.status == "submitted",
               Assignment.total.is_not(None)))]


def load_panel(conn: Connection, call_id: str) -> dict[str, float]:
    """Application -> the panel's score, for the call's disputed applications."""
    return dict(conn.execute(select(PanelDecision.application_id, PanelDecision.score)
                             .where(PanelDecision.call_id == call_id)).all())


def call_aggregates(conn: Connection, call: CallConfig) -> dict[str, Aggregate]:
    """The aggregates of every application of the call with submitted reviews, panel scores applied."""
    return aggregates(load_reviews(conn, call.id), call, load_panel(conn, call.id))


def committed_budget(conn: Connection, call_id: str, uncommitted: Iterable[str]
                     ) -> dict[str, int]:
    """Per category, grants already proposed or awarded in the call (not to be spent twice).

    `uncommitted`: the states whose applications hold no grant of the budget.
    """
    out: dict[str, int] = defaultdict(int)
    for cat, amount in conn.execute(
            select(Application.category, Application.granted_amount)
            .where(Application.call_id == call_id, Application.recommended.is_(True),
                   Application.state.notin_(tuple(uncommitted)))):
        out[cat] += amount or 0
    return dict(out)


def rank_call(conn: Connection, call: CallConfig, app_ids: list[str], rankable: Iterable[str],
              uncommitted: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Column updates for the applications that can be ranked now, and why the others wait.

    `rankable`: the states an application is ranked from; `uncommitted`: as for
    `committed_budget`.
    """
    aggs = call_aggregates(conn, call)
    wanted = set(app_ids)
    apps = conn.execute(
        select(Application.id, Application.category, Application.requested_amount,
               Application.declared_at)
        .where(Application.call_id == call.id, Application.state.in_(tuple(rankable)))).all()
    apps = [a for a in apps if a.id in wanted]
    waiting: dict[str, str] = {}
    flagged = sorted(a.id for a in apps if a.id in aggs and aggs[a.id].blocked)
    if flagged:
        for a in flagged:
            g = aggs[a]
            waiting[a] = (f"reviewers disagree (spread {g.spread:.2f} > "
                          f"{call.review.spread_flag:g}): record a panel decision with "
                          "`starfund review panel`")
        note = (f"ranking waits for panel decisions on {len(flagged)} flagged application(s): "
                + ", ".join(flagged[:5]) + (" ..." if len(flagged) > 5 else ""))
        for a in apps:
            waiting.setdefault(a.id, note if a.id in aggs else "no score to rank")
        return {}, waiting
    entries = [Entry(a.id, a.category, a.requested_amount, a.declared_at, aggs[a.id])
               for a in apps if a.id in aggs]
    for a in apps:
        if a.id not in aggs:
            waiting[a.id] = "no score to rank"
    return cut(entries, call, committed_budget(conn, call.id, uncommitted)), waiting
