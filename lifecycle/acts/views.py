"""What each role may see: the reads behind the portal's pages.

Every read that names an object checks the caller may see it, and says "not
found" alike for an object that does not exist and one that is not the caller's,
so ids cannot be probed: staff see every application; a society's account its
own society's; an expert's account those it is (still) assigned to. A society
never sees who reviewed it nor any single score; an expert sees only its own.
"""
from __future__ import annotations

from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Connection, func, select

from lifecycle import kinds
from lifecycle.acts import objections
from lifecycle.core import audit, clock
from lifecycle.core.accounts import Actor
from lifecycle.core.errors import NotFound
from lifecycle.core.models import (
    Application,
    Assignment,
    Call,
    Deadline,
    Expert,
    Notification,
    Objection,
    Society,
)
from lifecycle.engine import engine
from lifecycle.engine.machine import for_workflow
from notifications import render
from states import award
from states.roles import EXPERT, SOCIETY, STAFF

LIVE = ("assigned", "submitted")
"""Assignments that count: recused and reassigned ones do not."""


def is_staff(actor: Actor) -> bool:
    return actor.holds(STAFF)


def application(conn: Connection, actor: Actor, app_id: str) -> Any:
    """The application row if `actor` may see it, else NotFound (the same for "not yours")."""
    app = conn.execute(select(Application.__table__).where(Application.id == app_id)).first()
    if app is None:
        raise NotFound(f"no application {app_id!r}")
    if is_staff(actor):
        return app
    if actor.holds((SOCIETY,)) and actor.society_id == app.society_id:
        return app
    if actor.holds((EXPERT,)) and actor.expert_id and conn.execute(
            select(Assignment.id).where(Assignment.application_id == app_id,
                                        Assignment.expert_id == actor.expert_id,
                                        Assignment.status.in_(LIVE))).first():
        return app
    raise NotFound(f"no application {app_id!r}")


def calls(conn: Connection) -> list[dict[str, Any]]:
    """Every call with its declaration window and whether it is open now."""
    now = clock.now()
    out = []
    for row in conn.execute(select(Call.id).order_by(Call.created_at.desc(), Call.id)):
        call = engine.load_call(conn, row.id)
        cal = call.calendar
        out.append({"id": call.id, "title": call.title, "title_en": call.title_en,
                    "workflow": call.workflow, "portal": kinds.of(call.workflow).portal,
                    "opens": cal.declaration_opens,
                    "closes": cal.declaration_closes, "review_due": cal.review_due,
                    "open": cal.declaration_opens <= now <= cal.declaration_closes,
                    "config": call})
    return out


def society_applications(conn: Connection, society_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(Application.id, Application.call_id, Application.title,
                               Application.category, Application.state,
                               Application.requested_amount, Application.granted_amount,
                               Application.updated_at)
                        .where(Application.society_id == society_id)
                        .order_by(Application.updated_at.desc(), Application.id))
    return [dict(r._mapping) for r in rows]


def state_label(conn: Connection, call_id: str, state: str) -> str:
    wm = for_workflow(engine.load_call(conn, call_id).workflow)
    return wm.workflow.state(state).label


def moves_of(conn: Connection, app_id: str) -> list[dict[str, Any]]:
    """The application's state changes (for its society: no reviewer, no score)."""
    return [h for h in audit.query(conn, audit.Query(application_id=app_id, limit=None))
            if h["to_state"]]


def messages_to_society(conn: Connection, app: Any) -> list[dict[str, Any]]:
    rows = conn.execute(select(Notification.kind, Notification.status, Notification.created_at,
                               Notification.sent_at, Notification.language,
                               Notification.context)
                        .where(Notification.application_id == app.id,
                               Notification.recipient_kind == "society")
                        .order_by(Notification.id))
    out = []
    for r in rows:
        try:
            text = render.render(r.kind, r.language, r.context)
            subject, body = text.subject, text.body
        except TemplateError:  # a template changed since it was queued: show the kind alone
            subject, body = r.kind, ""
        out.append({"kind": r.kind, "status": r.status, "created_at": r.created_at,
                    "sent_at": r.sent_at, "subject": subject, "body": body})
    return out


def assignments(conn: Connection, expert_id: str) -> list[dict[str, Any]]:
    """An expert's live assignments with their application and the round's deadline."""
    rows = conn.execute(select(Assignment.id, Assignment.call_id, Assignment.application_id,
                               Assignment.status, Assignment.total, Assignment.draft,
                               Assignment.draft_at, Assignment.submitted_at,
                               Application.title, Application.title_en, Application.category,
                               Application.state)
                        .join(Application, Application.id == Assignment.application_id)
                        .where(Assignment.expert_id == expert_id, Assignment.status.in_(LIVE))
                        .order_by(Assignment.call_id, Assignment.application_id))
    out = [dict(r._mapping) for r in rows]
    due = {}
    for a in out:
        if a["call_id"] not in due:
            due[a["call_id"]] = engine.load_call(conn, a["call_id"]).calendar.review_due
        a["due"] = due[a["call_id"]]
    return out


def assignment(conn: Connection, actor: Actor, assignment_id: int) -> Any:
    """One of the expert's own live assignments, else NotFound."""
    row = conn.execute(select(Assignment.__table__).where(Assignment.id == assignment_id)).first()
    if row is None or row.status not in LIVE or row.expert_id != actor.expert_id:
        raise NotFound(f"no assignment {assignment_id}")
    return row


def outstanding(conn: Connection, call_id: str) -> list[dict[str, Any]]:
    """Per expert of the call: assigned, returned, still owed (staff's reminder list)."""
    rows = conn.execute(select(Assignment.expert_id, Expert.name, Expert.email,
                               func.count().label("assigned"),
                               func.count(Assignment.submitted_at).label("returned"))
                        .join(Expert, Expert.id == Assignment.expert_id)
                        .where(Assignment.call_id == call_id, Assignment.status.in_(LIVE))
                        .group_by(Assignment.expert_id, Expert.name, Expert.email)
                        .order_by(Assignment.expert_id))
    return [{**r._mapping, "owed": r.assigned - r.returned} for r in rows]


def notices(conn: Connection) -> list[dict[str, Any]]:
    """Calls whose public notice (公示) is running now."""
    now = clock.now()
    out = []
    rows = conn.execute(select(Application.call_id, func.count())
                        .where(Application.state.in_(award.LISTED))
                        .group_by(Application.call_id)).all()
    for call_id, n in rows:
        ends = objections.notice_end(conn, call_id)
        if ends is not None and now < ends:
            call = engine.load_call(conn, call_id)
            out.append({"id": call_id, "title": call.title, "title_en": call.title_en,
                        "ends": ends, "count": n})
    return out


def deadlines(conn: Connection, call_id: str) -> list[dict[str, Any]]:
    now = clock.now()
    rows = conn.execute(select(Deadline.kind, Deadline.due_at, Deadline.fired_at, Deadline.fires)
                        .where(Deadline.call_id == call_id).order_by(Deadline.due_at))
    return [{**r._mapping, "overdue": r.fired_at is None and r.due_at < now} for r in rows]


def society_name(conn: Connection, society_id: str) -> tuple[str, str]:
    row = conn.execute(select(Society.name, Society.name_en)
                       .where(Society.id == society_id)).first()
    return (row.name, row.name_en) if row else (society_id, society_id)


def objection_contacts(conn: Connection, actor: Actor, app_id: str) -> dict[int, str]:
    """How to reach each objector of an application, by objection id: for the approvers who
    resolve objections (`objection.contact`) only; empty for everyone else, whose pages show
    `objections.HIDDEN` instead (the objector's name is shown to all staff)."""
    if not objections.may_see_contact(conn, actor):
        return {}
    return dict(conn.execute(select(Objection.id, Objection.contact)
                             .where(Objection.application_id == app_id)).all())


def trail_as_read(conn: Connection, actor: Actor, events: list[dict[str, Any]],
                  may_see: bool | None = None) -> list[dict[str, Any]]:
    """The trail's events as `actor` may read them: an objection's contact in an
    `objection_file` payload replaced by `objections.HIDDEN` unless `actor` may see it (the
    trail itself is unchanged; only what this reader is shown). `may_see`: already asked."""
    if may_see if may_see is not None else objections.may_see_contact(conn, actor):
        return events
    for e in events:
        payload = e.get("payload")
        if e.get("action") == "objection_file" and isinstance(payload, dict) \
                and "contact" in payload:
            e["payload"] = {**payload, "contact": objections.HIDDEN}
    return events
