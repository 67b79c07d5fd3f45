"""Expert assignment and score entry: administrative acts, each audited.

The simple rules of the foundation: experts are assigned round-robin,
skipping any expert of the applicant society or its institution or who
declared a conflict; scores are weighted to a total on 100 points.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from lifecycle import audit, clock, engine
from lifecycle.callconfig import CallConfig
from lifecycle.models import Application, Assignment, Expert, Society


class ReviewError(engine.EngineError):
    pass


def conflicted(expert: Any, app: Any) -> str | None:
    """Why `expert` may not review `app` (回避), or None."""
    if app.society_id in (expert.societies or []) or app.society_id in (expert.conflict_societies or []):
        return "expert belongs to or declared a conflict with the applicant society"
    if expert.institution and expert.institution == app.society_institution:
        return "expert is of the applicant's institution"
    if expert.institution and expert.institution in (expert.conflict_institutions or []):
        return "expert declared a conflict with the institution"
    if expert.id in (app.excluded_experts or []):
        return "the applicant asked to exclude this expert"
    return None


def assign_round_robin(conn: Connection, call_id: str, per_application: int | None,
                       actor: str) -> dict[str, int]:
    """Assign experts to every eligible application without enough, in turn; all or nothing."""
    call = engine.load_call(conn, call_id)
    need = per_application or call.review.per_application
    experts = conn.execute(select(Expert.__table__).order_by(Expert.id)).all()
    apps = conn.execute(
        select(Application.id, Application.society_id, Application.excluded_experts,
               Society.institution.label("society_institution"))
        .join(Society, Society.id == Application.society_id)
        .where(Application.call_id == call_id, Application.state == "eligible")
        .order_by(Application.id)).all()
    have: dict[str, set[str]] = {}
    for a_id, e_id in conn.execute(select(Assignment.application_id, Assignment.expert_id)
                                   .where(Assignment.call_id == call_id)):
        have.setdefault(a_id, set()).add(e_id)
    now, turn, rows, short = clock.now(), 0, [], []
    for app in apps:
        taken = have.setdefault(app.id, set())
        tried = 0
        while len(taken) < need and tried < len(experts):
            ex = experts[turn % len(experts)]
            turn, tried = turn + 1, tried + 1
            if ex.id not in taken and conflicted(ex, app) is None:
                taken.add(ex.id)
                rows.append({"call_id": call_id, "application_id": app.id, "expert_id": ex.id,
                             "status": "assigned", "assigned_at": now})
        if len(taken) < need:
            short.append(app.id)
    if short:
        raise ReviewError(f"{len(short)} application(s) cannot get {need} experts without a "
                          f"conflict: {', '.join(short[:10])}; nothing was assigned")
    if rows:
        conn.execute(insert(Assignment), rows)
        audit.record(conn, actor, [audit.Event("assign", call_id, r["application_id"], payload={
            "expert": r["expert_id"]}) for r in rows])
    return {"assigned": len(rows), "applications": len(apps)}


def total_of(call: CallConfig, scores: dict[str, float]) -> float:
    """The weighted total on 100 points of one expert's criterion scores."""
    weight = sum(c.weight for c in call.criteria)
    return round(sum(scores[c.id] / c.max * c.weight for c in call.criteria) * 100 / weight, 2)


def record_scores(conn: Connection, call_id: str,
                  sheets: list[tuple[str, str, dict[str, float]]], actor: str) -> int:
    """Record (expert, application, scores) triples; each must be a live assignment."""
    call = engine.load_call(conn, call_id)
    live = {(r.expert_id, r.application_id): r for r in conn.execute(
        select(Assignment.id, Assignment.expert_id, Assignment.application_id, Assignment.scores)
        .where(Assignment.call_id == call_id, Assignment.status != "recused"))}
    now, events = clock.now(), []
    for expert_id, app_id, scores in sheets:
        a = live.get((expert_id, app_id))
        if a is None:
            raise ReviewError(f"expert {expert_id} is not assigned to {app_id}")
        missing = [c.id for c in call.criteria if c.id not in scores]
        if missing:
            raise ReviewError(f"{expert_id} on {app_id}: missing criteria {', '.join(missing)}")
        total = total_of(call, scores)
        conn.execute(update(Assignment).where(Assignment.id == a.id).values(
            scores=scores, total=total, status="submitted", submitted_at=now))
        events.append(audit.Event("score", call_id, app_id, payload={
            "expert": expert_id, "scores": scores, "total": total, "old": a.scores}))
    audit.record(conn, actor, events)
    return len(events)


def grade_of(call: CallConfig, score: float) -> str:
    """The grade name for an assessment score, by the call's thresholds (highest first)."""
    for name, bound in sorted(call.assessment.grades.items(), key=lambda kv: -kv[1]):
        if score >= bound:
            return name
    return call.assessment.fail_grade


def record_grades(conn: Connection, call_id: str, scores: dict[str, float], actor: str) -> int:
    """Record assessment scores and their grades for applications awaiting assessment."""
    call = engine.load_call(conn, call_id)
    due = set(conn.execute(select(Application.id).where(
        Application.call_id == call_id, Application.state == "assessment_due")).scalars())
    events = []
    for app_id, score in scores.items():
        if app_id not in due:
            raise ReviewError(f"{app_id} is not awaiting assessment")
        if not 0 <= score <= call.assessment.scale:
            raise ReviewError(f"{app_id}: score {score} outside 0..{call.assessment.scale:g}")
        grade = grade_of(call, score)
        conn.execute(update(Application).where(Application.id == app_id)
                     .values(assessment_score=score, assessment_grade=grade))
        events.append(audit.Event("grade", call_id, app_id, payload={"score": score,
                                                                     "grade": grade}))
    audit.record(conn, actor, events)
    return len(events)
