"""Expert review as administrative acts, each audited: assignment, recusal (回避),
reassignment, score entry and the panel decision on disputed applications.

The algorithms live beside: `lifecycle.acts.assignment` (who reviews what),
`lifecycle.acts.scoresheets` (sheets in and out), `lifecycle.acts.ranking` (aggregation).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from lifecycle.acts import assignment, ranking, scoresheets
from lifecycle.core import audit, clock, engine
from lifecycle.core.models import Application, Assignment, Expert, PanelDecision, Society

LIVE = assignment.LIVE


class ReviewError(engine.EngineError):
    pass


def assign(conn: Connection, call_id: str, actor: str, **options: Any) -> dict[str, Any]:
    """Assign experts to every application in review (see `lifecycle.acts.assignment`)."""
    return assignment.assign(conn, call_id, actor, **options)


def record_scores(conn: Connection, call_id: str,
                  sheets: list[tuple[str, str, dict[str, float]]], actor: str) -> int:
    """Record (expert, application, scores) triples; each must be a live assignment."""
    return scoresheets.record(conn, call_id, sheets, actor)


def _application(conn: Connection, app_id: str) -> Any:
    row = conn.execute(
        select(Application.id, Application.call_id, Application.state, Application.society_id,
               Application.discipline, Application.excluded_experts, Application.title,
               Application.title_en, Application.category, Application.requested_amount,
               Society.institution, Society.name.label("society_name"),
               Society.name_en.label("society_name_en"))
        .join(Society, Society.id == Application.society_id)
        .where(Application.id == app_id)).first()
    if row is None:
        raise ReviewError(f"no application {app_id!r}")
    return row


def _in_review(app: Any, what: str) -> None:
    if app.state not in assignment.REVIEW_STATES:
        raise ReviewError(f"{app.id} is {app.state}; {what} only while it is eligible or "
                          "under review")


def recuse(conn: Connection, app_id: str, expert_id: str, reason: str,
           actor: str) -> dict[str, Any]:
    """An expert declares a conflict after assignment: its slot is freed, its scores set aside."""
    app = _application(conn, app_id)
    _in_review(app, "experts recuse")
    row = conn.execute(select(Assignment.id, Assignment.status, Assignment.total)
                       .where(Assignment.application_id == app_id,
                              Assignment.expert_id == expert_id)).first()
    if row is None or row.status not in LIVE:
        raise ReviewError(f"expert {expert_id} is not assigned to {app_id}")
    if not reason.strip():
        raise ReviewError("a recusal needs a reason (--reason)")
    conn.execute(update(Assignment).where(Assignment.id == row.id).values(status="recused"))
    left = _live_count(conn, app_id)
    audit.record(conn, actor, [audit.Event("recuse", app.call_id, app_id, payload={
        "expert": expert_id, "reason": reason, "was": row.status, "total_set_aside": row.total,
        "experts_left": left})])
    return {"application": app_id, "expert": expert_id, "experts_left": left}


def _live_count(conn: Connection, app_id: str) -> int:
    return conn.execute(select(func.count()).select_from(Assignment)
                        .where(Assignment.application_id == app_id,
                               Assignment.status.in_(LIVE))).scalar() or 0


def reassign(conn: Connection, app_id: str, from_expert: str, to_expert: str, actor: str,
             reason: str = "", max_load: int | None = None) -> dict[str, Any]:
    """Give `from_expert`'s slot to `to_expert`, with the conflict and load checks of assign."""
    app = _application(conn, app_id)
    _in_review(app, "experts are reassigned")
    call = engine.load_call(conn, app.call_id)
    rows = {r.expert_id: r for r in conn.execute(
        select(Assignment.id, Assignment.expert_id, Assignment.status, Assignment.replaces)
        .where(Assignment.application_id == app_id))}
    old = rows.get(from_expert)
    if old is None:
        raise ReviewError(f"expert {from_expert} was never assigned to {app_id}")
    if old.status == "submitted":
        raise ReviewError(f"expert {from_expert} already returned scores for {app_id}; if it has "
                          "a conflict, record it first with `starfund review recuse`")
    if any(r.replaces == from_expert for r in rows.values()):
        raise ReviewError(f"the slot of {from_expert} on {app_id} was already given to "
                          + ", ".join(r.expert_id for r in rows.values()
                                      if r.replaces == from_expert))
    ex = conn.execute(select(Expert.__table__).where(Expert.id == to_expert)).first()
    if ex is None:
        raise ReviewError(f"no expert {to_expert!r}")
    if to_expert in rows:
        raise ReviewError(f"expert {to_expert} is already on {app_id} "
                          f"({rows[to_expert].status})")
    reviewer = assignment.Reviewer(ex.id, ex.institution or "", frozenset(ex.disciplines or []),
                                   frozenset(ex.societies or []),
                                   frozenset(ex.conflict_societies or []),
                                   frozenset(ex.conflict_institutions or []))
    applicant = assignment.Applicant(app.id, app.society_id, app.institution or "",
                                     app.discipline or "", frozenset(app.excluded_experts or []))
    why = assignment.conflict_of(reviewer, applicant)
    if why:
        raise ReviewError(f"expert {to_expert} may not review {app_id}: {why}")
    limit = max_load or call.review.max_load
    load = conn.execute(select(func.count()).select_from(Assignment)
                        .where(Assignment.call_id == app.call_id,
                               Assignment.expert_id == to_expert,
                               Assignment.status.in_(LIVE))).scalar() or 0
    if limit is not None and load >= limit:
        raise ReviewError(f"expert {to_expert} already has {load} applications of {app.call_id} "
                          f"(load limit {limit})")
    now = clock.now()
    if old.status in LIVE:
        conn.execute(update(Assignment).where(Assignment.id == old.id).values(status="released"))
    conn.execute(insert(Assignment).values(call_id=app.call_id, application_id=app_id,
                                           expert_id=to_expert, status="assigned",
                                           assigned_at=now, replaces=from_expert))
    audit.record(conn, actor, [audit.Event("reassign", app.call_id, app_id, payload={
        "from": from_expert, "to": to_expert, "from_status": old.status, "reason": reason,
        "to_load": load + 1})], at=now)
    if app.state == "under_review":
        assignment.notify_experts(conn, call, [(app, to_expert)], now)
    return {"application": app_id, "from": from_expert, "to": to_expert, "to_load": load + 1}


def panel_decision(conn: Connection, app_id: str, score: float, reason: str,
                   actor: str) -> dict[str, Any]:
    """Record the panel's score for a flagged application (reviewers disagreed), audited."""
    app = _application(conn, app_id)
    if app.state not in ("under_review", "reviewed"):
        raise ReviewError(f"{app_id} is {app.state}; a panel decision is taken before ranking")
    call = engine.load_call(conn, app.call_id)
    if not 0 <= score <= ranking.SCALE:
        raise ReviewError(f"--score {score:g} outside 0..{ranking.SCALE:g}")
    if not reason.strip():
        raise ReviewError("a panel decision needs a reason (--reason)")
    agg = ranking.call_aggregates(conn, call).get(app_id)
    if agg is None or not agg.flagged:
        spread = f"spread {agg.spread:.2f}" if agg else "no scores yet"
        raise ReviewError(f"{app_id} is not flagged ({spread}, flag above "
                          f"{call.review.spread_flag:g}); panel decisions are for applications "
                          "whose reviewers disagree")
    old = conn.execute(select(PanelDecision.score, PanelDecision.reason)
                       .where(PanelDecision.application_id == app_id)).first()
    now = clock.now()
    values = {"score": score, "reason": reason, "decided_by": actor, "decided_at": now}
    if old is None:
        conn.execute(insert(PanelDecision).values(application_id=app_id, call_id=app.call_id,
                                                  **values))
    else:
        conn.execute(update(PanelDecision).where(PanelDecision.application_id == app_id)
                     .values(**values))
    audit.record(conn, actor, [audit.Event("panel_decision", app.call_id, app_id, payload={
        "score": score, "reason": reason, "spread": agg.spread, "aggregate": agg.score
        if agg.panel is None else None, "old": None if old is None else
        {"score": old.score, "reason": old.reason}})], at=now)
    return {"application": app_id, "score": score, "spread": agg.spread}
