"""The figures of a call, a programme year and a society, as plain data (dicts of lists and
numbers, JSON-ready): what `starfund report` draws and tabulates, and what the portal's
dashboard shows. Each is a handful of set-based queries for the whole call, never one per
application. The multi-year tables the demo prints (`years_table`) live here too, so they
work on any database."""
from __future__ import annotations

from collections import Counter, defaultdict
from statistics import mean
from typing import Any

from sqlalchemy import Connection, func, select

from lifecycle import kinds
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.errors import NotFound
from lifecycle.core.models import (
    Application,
    AssessmentRecord,
    Assignment,
    AuditEvent,
    Call,
    Expert,
    Payment,
    Society,
    StarRecord,
    StarStatus,
)
from lifecycle.core.progress import current
from lifecycle.rules.payments import money
from states import names as S
from states.outcome import OUTCOMES

MOVES = ("new", "raised", "kept", "lowered", "lost", "revoked")
"""Star moves across years: a star awarded new, raised, kept or lowered by a rating; a star
lost by a later rating; a star revoked between ratings."""


def calls(conn: Connection, year: int | None = None) -> list[CallConfig]:
    """The calls (of the programme year whose declarations open in `year`), oldest first."""
    out = [CallConfig.model_validate(c) for c in conn.execute(
        select(Call.config).order_by(Call.created_at, Call.id)).scalars()]
    return [c for c in out if year is None or c.calendar.declaration_opens.year == year]


def _call(conn: Connection, call_id: str) -> CallConfig:
    config = conn.execute(select(Call.config).where(Call.id == call_id)).scalar()
    if config is None:
        raise NotFound(f"no call {call_id!r}")
    return CallConfig.model_validate(config)


def report_data(conn: Connection, call_id: str) -> dict[str, Any]:
    """Everything the report shows of one call."""
    call = _call(conn, call_id)
    apps = conn.execute(select(Application.id, Application.category, Application.state,
                               Application.requested_amount, Application.granted_amount,
                               Application.score, Application.recommended,
                               Application.star_level)
                        .where(Application.call_id == call_id)).all()
    reached: dict[str, set[str]] = defaultdict(set)
    for app_id, state in conn.execute(select(AuditEvent.application_id, AuditEvent.to_state)
                                      .where(AuditEvent.call_id == call_id,
                                             AuditEvent.to_state.is_not(None)).distinct()):
        reached[state].add(app_id)
    kind = kinds.of(call.workflow)
    funnel = [{"stage": state, "label": kind.workflow.state(state).label,
               "count": len(reached.get(state, ()))}
              for state in kind.funnel]
    declared = reached.get(S.DECLARED, set())
    awarded = reached.get(S.AWARDED, set()) | reached.get(S.STARRED, set())
    paid = dict(conn.execute(select(Application.category, func.sum(Payment.amount))
                             .join(Application, Application.id == Payment.application_id)
                             .where(Payment.call_id == call_id, Payment.status == "paid")
                             .group_by(Application.category)).all())
    budget = []
    for c in call.categories:
        mine = [a for a in apps if a.category == c.id]
        budget.append({"category": c.id, "name": c.name, "name_en": c.name_en,
                       "budget": c.budget,
                       "requested": sum(a.requested_amount for a in mine if a.id in declared),
                       "awarded": sum(a.granted_amount or 0 for a in mine if a.id in awarded),
                       "paid": int(paid.get(c.id) or 0)})
    scores = []
    for c in call.categories:
        ranked = [a for a in apps if a.category == c.id and a.score is not None]
        funded = [a.score for a in ranked if a.recommended]
        scores.append({"category": c.id, "name": c.name, "name_en": c.name_en,
                       "scores": sorted(round(a.score, 2) for a in ranked),
                       "cut": round(min(funded), 2) if funded else None,
                       "funded": len(funded), "ranked": len(ranked)})
    return {"call": {"id": call.id, "title": call.title, "title_en": call.title_en,
                     "workflow": call.workflow, "stars": kind.rates_stars, "year": call.calendar.declaration_opens.year,
                     "budget": call.budget_total, "pass_mark": call.review.pass_mark},
            "applications": len(apps),
            "states": dict(Counter(a.state for a in apps)),
            "funnel": funnel, "budget": budget, "scores": scores,
            "experts": experts(conn, call_id), "assessment": assessment(conn, call_id),
            "stars": stars(conn, call_id) if kind.rates_stars else None,
            "money": money(conn, call_id)}


def experts(conn: Connection, call_id: str) -> list[dict[str, Any]]:
    """Per expert: reviews returned, the mean total given, and the normalised mean: how far,
    on average, the expert's totals sit above (+) or below (-) the mean of the application's
    reviewers (a lenient or harsh hand, in points out of 100)."""
    rows = conn.execute(select(Assignment.expert_id, Assignment.application_id,
                               Assignment.total, Expert.name)
                        .join(Expert, Expert.id == Assignment.expert_id)
                        .where(Assignment.call_id == call_id, Assignment.status == "submitted",
                               Assignment.total.is_not(None))).all()
    per_app: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_app[r.application_id].append(r.total)
    app_mean = {a: mean(v) for a, v in per_app.items()}
    per_expert: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        per_expert[r.expert_id].append(r)
    return [{"expert": e, "name": rs[0].name, "reviews": len(rs),
             "mean": round(mean(r.total for r in rs), 2),
             "normalised": round(mean(r.total - app_mean[r.application_id] for r in rs), 2)}
            for e, rs in sorted(per_expert.items())]


def assessment(conn: Connection, call_id: str) -> dict[str, Any]:
    """Grades per checkpoint, and the outcomes of dynamic management."""
    grades: dict[str, dict[str, int]] = defaultdict(dict)
    for checkpoint, grade, n in conn.execute(
            select(AssessmentRecord.checkpoint, AssessmentRecord.grade, func.count())
            .where(AssessmentRecord.call_id == call_id, AssessmentRecord.grade.is_not(None))
            .group_by(AssessmentRecord.checkpoint, AssessmentRecord.grade)):
        grades[checkpoint][grade] = n
    outcomes = dict(conn.execute(select(Application.state, func.count())
                                 .where(Application.call_id == call_id,
                                        Application.state.in_(OUTCOMES))
                                 .group_by(Application.state)).all())
    return {"grades": dict(grades), "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES}}


def stars(conn: Connection, call_id: str) -> dict[str, Any]:
    """A star call's stars per level (1 to 5) and its moves (new, raised, kept, lowered, the
    stars its rating ended, and its stars revoked since)."""
    rows = conn.execute(select(StarRecord.level, StarRecord.change, StarRecord.status,
                               StarRecord.reward).where(StarRecord.call_id == call_id)).all()
    levels = Counter(r.level for r in rows)
    moves = Counter(r.change for r in rows)
    moves["revoked"] = sum(1 for r in rows if r.status == StarStatus.REVOKED)
    moves["lost"] = conn.execute(select(func.count()).select_from(StarRecord).where(
        StarRecord.status == StarStatus.LOST,
        StarRecord.end_reason.like(f"rating of {call_id}:%"))).scalar() or 0
    return {"levels": {str(k): levels.get(k, 0) for k in range(1, 6)},
            "moves": {m: moves.get(m, 0) for m in MOVES},
            "rewards": sum(r.reward for r in rows), "stars": len(rows)}


def years_table(conn: Connection, years: list[int] | None = None) -> list[dict[str, Any]]:
    """Per programme year: what its project calls and star calls came to, side by side (the
    demo's closing tables, and the report's multi-year figures)."""
    by_year: dict[int, list[CallConfig]] = defaultdict(list)
    for c in calls(conn):
        by_year[c.calendar.declaration_opens.year].append(c)
    out = []
    for y in sorted(years or by_year):
        mine = by_year.get(y, [])
        star = [c.id for c in mine if kinds.of(c.workflow).rates_stars]
        project = [c.id for c in mine if c.id not in star]
        counts = Counter()
        for state, n in conn.execute(select(Application.state, func.count())
                                     .where(Application.call_id.in_(project))
                                     .group_by(Application.state)):
            counts[state] += n
        m = Counter()
        for c in project:
            m.update(money(conn, c))
        star_counts = Counter()
        for state, n in conn.execute(select(Application.state, func.count())
                                     .where(Application.call_id.in_(star))
                                     .group_by(Application.state)):
            star_counts[state] += n
        moves, rewards = Counter(), 0
        for c in star:
            s = stars(conn, c)
            moves.update(s["moves"])
            rewards += s["rewards"]
        out.append({"year": y, "project_calls": project, "star_calls": star,
                    "funded": sum(v for k, v in counts.items() if k in OUTCOMES),
                    "terminated": counts.get(S.TERMINATED, 0),
                    "ineligible": counts.get(S.INELIGIBLE, 0),
                    "paid": m["paid"], "withheld": m["withheld"],
                    "recovered": m["recovered"], "to_recover": m["to_recover"],
                    "star_declared": sum(star_counts.values()),
                    "star_ineligible": star_counts.get(S.INELIGIBLE, 0),
                    "moves": {k: moves.get(k, 0) for k in MOVES}, "rewards": rewards})
    return out


def year_data(conn: Connection, year: int) -> dict[str, Any]:
    """A programme year: each of its calls' figures, and the years so far side by side."""
    mine = calls(conn, year)
    if not mine:
        raise NotFound(f"no call of the programme year {year} (a call's year is the year its "
                       "declarations open)")
    progress = current()  # the command line's bar, when it draws one
    progress.step("reporting", total=len(mine) + 1)
    figures = []
    for c in mine:
        figures.append(report_data(conn, c.id))
        progress.advance()
    years = years_table(conn, [y for y in sorted(
        {c.calendar.declaration_opens.year for c in calls(conn)}) if y <= year])
    progress.advance()
    return {"year": year, "calls": figures, "years": years}


def society_data(conn: Connection, society_id: str) -> dict[str, Any]:
    """One society across calls and years: each application's call, year, state, score,
    money, grade and stars."""
    s = conn.execute(select(Society.id, Society.name, Society.name_en, Society.society_class)
                     .where(Society.id == society_id)).first()
    if s is None:
        raise NotFound(f"no society {society_id!r}")
    year = {c.id: c.calendar.declaration_opens.year for c in calls(conn)}
    rows = conn.execute(select(Application.id, Application.call_id, Application.category,
                               Application.state, Application.score,
                               Application.requested_amount, Application.granted_amount,
                               Application.assessment_grade, Application.star_level,
                               Call.workflow)
                        .join(Call, Call.id == Application.call_id)
                        .where(Application.society_id == society_id)
                        .order_by(Call.created_at, Application.id)).all()
    history = [{"application": r.id, "call": r.call_id, "year": year.get(r.call_id),
                "workflow": r.workflow, "category": r.category, "state": r.state,
                "score": r.score, "requested": r.requested_amount,
                "granted": r.granted_amount or 0, "grade": r.assessment_grade,
                "stars": r.star_level} for r in rows]
    return {"society": {"id": s.id, "name": s.name, "name_en": s.name_en,
                        "class": s.society_class}, "history": history}
