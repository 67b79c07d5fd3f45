"""Read-only views for people: a call's status and one application's whole story."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from lifecycle.core import audit, clock, engine
from lifecycle.core.errors import NotFound
from lifecycle.core.machine import for_workflow
from lifecycle.core.models import (
    Application,
    Assignment,
    Deadline,
    Notification,
    Objection,
    Society,
)


def status(conn: Connection, call_id: str) -> dict[str, Any]:
    """Applications per state (in workflow order), money, and the deadlines still to come."""
    call = engine.load_call(conn, call_id)
    wm = for_workflow(call.workflow)
    counts = dict(conn.execute(select(Application.state, func.count())
                               .where(Application.call_id == call_id)
                               .group_by(Application.state)).all())
    order = [s.name for s in wm.workflow.states]
    states = [{"state": s, "label": wm.workflow.state(s).label, "count": counts[s]}
              for s in order if counts.get(s)]
    money = conn.execute(select(func.coalesce(func.sum(Application.requested_amount), 0),
                                func.coalesce(func.sum(Application.granted_amount), 0))
                         .where(Application.call_id == call_id)).one()
    now = clock.now()
    deadlines = [{"kind": d.kind, "due_at": d.due_at.isoformat(sep=" "), "fires": d.fires,
                  "action": d.action, "fired_at": d.fired_at.isoformat(sep=" ") if d.fired_at else None}
                 for d in conn.execute(select(Deadline.__table__).where(Deadline.call_id == call_id)
                                       .order_by(Deadline.due_at))]
    return {"call": call_id, "title": call.title, "workflow": call.workflow,
            "now": now.isoformat(sep=" "), "total": sum(counts.values()), "states": states,
            "requested": int(money[0]), "granted": int(money[1]), "budget": call.budget_total,
            "possible_triggers": wm.triggers_from(set(counts)),
            "deadlines": deadlines, "money": _money(conn, call_id=call_id)}


def show(conn: Connection, app_id: str) -> dict[str, Any]:
    """One application: its fields, reviews, money, objections, messages and full history."""
    app = conn.execute(select(Application.__table__).where(Application.id == app_id)).first()
    if app is None:
        raise engine.EngineError(f"no application {app_id!r}")
    data = dict(app._mapping)
    for k in ("declared_at", "updated_at"):
        data[k] = data[k].isoformat(sep=" ")
    reviews = [{"expert": r.expert_id, "status": r.status, "total": r.total, "scores": r.scores}
               for r in conn.execute(select(Assignment.__table__)
                                     .where(Assignment.application_id == app_id)
                                     .order_by(Assignment.expert_id))]
    objections = [{"id": o.id, "by": o.filed_by, "status": o.status, "reason": o.reason,
                   "resolution": o.resolution}
                  for o in conn.execute(select(Objection.__table__)
                                        .where(Objection.application_id == app_id)
                                        .order_by(Objection.id))]
    messages = [{"kind": n.kind, "to": n.recipient, "status": n.status, "attempts": n.attempts,
                 "sent_at": n.sent_at.isoformat(sep=" ") if n.sent_at else None,
                 "last_error": n.last_error}
                for n in conn.execute(select(Notification.__table__)
                                      .where(Notification.application_id == app_id)
                                      .order_by(Notification.id))]
    history = audit.query(conn, audit.Query(application_id=app_id, limit=None))
    return {"application": data, "reviews": reviews, "objections": objections,
            "notifications": messages, "history": history, **_assessment_view(conn, app_id)}


def _money(conn: Connection, **where: str) -> dict[str, int]:
    from lifecycle.acts import payments

    return payments.money(conn, **where)


def _assessment_view(conn: Connection, app_id: str) -> dict[str, Any]:
    """Money, instalments, assessment checkpoints and the star indicator sheet of one application."""
    from lifecycle.acts import assessing, payments
    from lifecycle.core.models import StarScore

    sheet = [{"indicator": r.indicator, "self": r.self_score, "checked": r.checked_score,
              "final": r.final_score}
             for r in conn.execute(select(StarScore.__table__)
                                   .where(StarScore.application_id == app_id)
                                   .order_by(StarScore.id))]
    if sheet:
        app = conn.execute(select(Application.call_id, Application.society_class)
                           .where(Application.id == app_id)).one()
        star = engine.load_call(conn, app.call_id).star
        maxima = (star.sheet_for(app.society_class) or star.own_sheet()).maxima
        for r in sheet:
            r["max"] = maxima.get(r["indicator"])
    return {"money": payments.money(conn, application_id=app_id),
            "payments": payments.instalments(conn, app_id),
            "assessments": assessing.records(conn, app_id), "star_scores": sheet}


def known(conn: Connection, call_id: str | None = None, application_id: str | None = None,
          society_id: str | None = None) -> None:
    """Refuse a filter naming a call, application or society that does not exist."""
    if call_id is not None:
        engine.load_call(conn, call_id)
    if application_id is not None and conn.execute(
            select(Application.id).where(Application.id == application_id)).first() is None:
        raise NotFound(f"no application {application_id!r}")
    if society_id is not None and conn.execute(
            select(Society.id).where(Society.id == society_id)).first() is None:
        raise NotFound(f"no society {society_id!r}")
