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
the earlier declaration, then the application id: never database order. A call
with classes (`classes`) ranks per class and category. A support bonus
(`lifecycle.rules.support`) is added to the score it ranks by, and said so in the
reason; the pass mark applies to the experts' score alone.

Cut: an application is proposed when its score reaches `pass_mark` and its grant
(`grant_percent` of the request) fits what is left of its budget; the cut is
strict, so once one does not fit no lower-ranked one of that budget is
proposed: the reasons say which budget, what was left when the application's turn came
and what its grant needed (`budget_short`), and, below it, where the budget ran out and
that the strict cut stopped there (`budget_stopped`). Budgets (`pool_budgets`): each category with a budget has its own,
and the categories without one share what the call's total leaves; with
classes, each class's budget is split the same way by its own category budgets.
With `move_leftover`, money left in any budget then goes to the best-scored
applications across budgets that passed but missed theirs.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core import clock
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application, Assignment, PanelDecision
from lifecycle.rules import support
from lifecycle.rules.support import Earned
from notifications.reasons import Reason

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
    cls: str = ""
    """The class of its society (calls with classes rank and cut per class)."""
    bonus: float = 0.0
    """Support points added to the score it ranks by (lifecycle.rules.support)."""
    bonus_text: str = ""

    @property
    def score(self) -> float:
        """The score it ranks by: the experts' score plus any support bonus."""
        return round(self.agg.score + self.bonus, 2)


def grant_of(call: CallConfig, requested: int) -> int:
    """The grant proposed for a request: `review.grant_percent` of it, in whole yuan."""
    return int(round(requested * call.review.grant_percent / 100))


Pool = tuple[str, str]
"""A budget an application draws on: (class, category), or (class, "*") for the categories
of a class (or of the call, class "") without a budget of their own."""


def pool_of(call: CallConfig, cls: str, category: str) -> Pool:
    """The budget an application of class `cls` in `category` draws on."""
    if call.classes:
        k = call.class_of(cls)
        if k is None:
            return (cls, "?")  # the call has no budget for this class
        return (cls, category) if category in k.categories else (cls, "*")
    c = call.category(category)
    return ("", category) if c is not None and c.budget is not None else ("", "*")


def pool_budgets(call: CallConfig) -> dict[Pool, int]:
    """Every budget of the call, in order: category budgets first, then the shared one(s)."""
    out: dict[Pool, int] = {}
    if call.classes:
        for k in call.classes:
            for cat, amount in k.categories.items():
                out[(k.id, cat)] = amount
            out[(k.id, "*")] = k.budget - sum(k.categories.values())
        return out
    for c in call.categories:
        if c.budget is not None:
            out[("", c.id)] = c.budget
    out[("", "*")] = call.budget_total - sum(out.values())
    return out


def pool_name(pool: Pool) -> Reason:
    """The budget as reasons name it ("category budget", "医科/academic budget" ...)."""
    cls, cat = pool
    if cat == "?":
        return Reason("budget_missing", cls=cls or "(none)")
    if not cls:
        return Reason("budget_shared") if cat == "*" else Reason("budget_category")
    return Reason("budget_class", cls=cls) if cat == "*" else \
        Reason("budget_class_category", cls=cls, category=cat)


def _group(e: Entry) -> str:
    return f"{e.cls}/{e.category}" if e.cls else e.category


def _group_said(e: Entry, call: CallConfig) -> Reason:
    """The group in a reason: its ids in English (as ever), its category's name in Chinese."""
    category = call.category(e.category)
    name = category.name if category is not None else e.category
    return Reason.literal(_group(e), f"{e.cls}/{name}" if e.cls else name)


def _key(e: Entry) -> tuple:
    return (-e.score, -e.agg.minimum, e.declared_at, e.id)


def cut(entries: list[Entry], call: CallConfig,
        committed: dict[Pool, int] | None = None) -> dict[str, dict[str, Any]]:
    """Rank per category (per class and category with classes) and cut by budget; returns per
    application the columns to write. `committed`: per budget, what is already granted."""
    committed = committed or {}
    rc = call.review
    by_group: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for e in entries:
        by_group[(e.cls, e.category)].append(e)
    rank: dict[str, int] = {}
    for rows in by_group.values():
        rows.sort(key=_key)
        for r, e in enumerate(rows, start=1):
            rank[e.id] = r
    budgets = pool_budgets(call)
    by_pool: dict[Pool, list[Entry]] = defaultdict(list)
    for e in entries:
        by_pool[pool_of(call, e.cls, e.category)].append(e)
    out: dict[str, dict[str, Any]] = {}
    missed: list[Entry] = []

    def head(e: Entry) -> Reason:
        if e.bonus:
            return Reason("rank_head_bonus", rank=rank[e.id], group=_group_said(e, call),
                          score=e.score,
                          experts=e.agg.score, bonus=e.bonus_text)
        return Reason("rank_head", rank=rank[e.id], group=_group_said(e, call), score=e.score)

    def walk(rows: list[Entry], left: int, what: Reason) -> int:
        stopped: tuple[int, str, int] | None = None  # the first that did not fit: rank, group,
        for e in rows:                                # grant (the cut is strict)
            r, grant = rank[e.id], grant_of(call, e.requested_amount)
            if e.agg.score < rc.pass_mark:
                out[e.id] = _row(e, r, False, 0, Reason(
                    "experts_below_pass" if e.bonus else "below_pass", head=head(e),
                    mark=rc.pass_mark))
                continue
            if stopped is None and grant <= left:
                left -= grant
                out[e.id] = _row(e, r, True, grant, Reason(
                    "proposed_within", head=head(e), grant=grant, budget=what, left=left))
                continue
            if stopped is None:
                stopped = (r, _group_said(e, call), grant)
                why = Reason("budget_short", head=head(e), budget=what, left=left, grant=grant)
            else:
                at, group, stop = stopped
                why = Reason("budget_stopped", head=head(e), budget=what, at=at, group=group,
                             stop=stop, left=left, grant=grant)
            out[e.id] = _row(e, r, False, 0, why)
            missed.append(e)
        return left

    spent = 0
    for pool in list(budgets) + [p for p in by_pool if p not in budgets]:
        rows = sorted(by_pool.get(pool, []), key=_key)
        if rows:
            left = budgets.get(pool, 0) - committed.get(pool, 0)
            spent += left - walk(rows, left, pool_name(pool))
    if rc.move_leftover and missed:
        pool = call.budget_total - sum(committed.values()) - spent
        for e in sorted(missed, key=_key):
            grant = grant_of(call, e.requested_amount)
            if grant > pool:
                out[e.id]["decision_reason"] += Reason("leftover_exhausted", left=pool)
                pool = -1  # strict: nobody below gets leftover either
                continue
            pool -= grant
            r = rank[e.id]
            out[e.id] = _row(e, r, True, grant, Reason(
                "proposed_leftover", head=head(e), grant=grant, left=pool))
    return out


def _row(e: Entry, rank: int, rec: bool, grant: int, reason: Reason) -> dict[str, Any]:
    return {"score": e.score, "rank": rank, "recommended": rec, "granted_amount": grant,
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


def committed_budget(conn: Connection, call: CallConfig, uncommitted: Iterable[str]
                     ) -> dict[Pool, int]:
    """Per budget (`pool_of`), grants already proposed or awarded in the call (not to be spent
    twice). `uncommitted`: the states whose applications hold no grant of the budget."""
    out: dict[Pool, int] = defaultdict(int)
    for cls, cat, amount in conn.execute(
            select(Application.society_class, Application.category, Application.granted_amount)
            .where(Application.call_id == call.id, Application.recommended.is_(True),
                   Application.state.notin_(tuple(uncommitted)))):
        out[pool_of(call, cls if call.classes else "", cat)] += amount or 0
    return dict(out)


def rank_call(conn: Connection, call: CallConfig, app_ids: list[str], rankable: Iterable[str],
              uncommitted: Iterable[str], now: datetime | None = None,
              support_kinds: Iterable[str] = ()) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, list[Earned]]]:
    """Column updates for the applications that can be ranked now, why the others wait, and
    the support each ranked one's score relies on (its bonus notes).

    `rankable`: the states an application is ranked from; `uncommitted`: as for
    `committed_budget`; `now`: when stars held count for support (default: the clock's);
    `support_kinds`: the kinds whose grades earn support (`History.earns_support`).
    """
    aggs = call_aggregates(conn, call)
    wanted = set(app_ids)
    apps = conn.execute(
        select(Application.id, Application.society_id, Application.society_class,
               Application.category, Application.requested_amount, Application.declared_at)
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
        return {}, waiting, {}
    earned = support.earned(conn, call, {a.society_id for a in apps}, now or clock.now(),
                            support_kinds)
    used: dict[str, list[Earned]] = {}
    entries = []
    for a in apps:
        if a.id not in aggs:
            waiting[a.id] = "no score to rank"
            continue
        points, notes = support.of_effect(earned.get(a.society_id, []), "bonus")
        if notes:
            used[a.id] = notes
        entries.append(Entry(a.id, a.category, a.requested_amount, a.declared_at, aggs[a.id],
                             a.society_class if call.classes else "", points,
                             "; ".join(n.text() for n in notes)))
    return cut(entries, call, committed_budget(conn, call, uncommitted)), waiting, used
