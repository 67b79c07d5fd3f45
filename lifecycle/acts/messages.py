"""The message kinds the workflows send, checked and previewed for template authors.

`state_kinds` reads the workflows (which state sends which kind, to whom); the
reminder kinds are `notifications.contexts.REMINDER_KINDS`. `check` renders every
template against a sample of its kind and `preview` gives the context a kind
would get for a real application; both build contexts with the same builders
the engine, the reminders and the expert assignment use (`notifications.contexts`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from lifecycle import kinds as call_kinds
from lifecycle.core import clock
from lifecycle.core.deadlines import entry_rows
from lifecycle.core.errors import NotFound
from lifecycle.core.models import (
    Application,
    Assignment,
    AuditEvent,
    Deadline,
    Expert,
    Notification,
    Society,
)
from lifecycle.engine import engine
from notifications import contexts, render
from states.spec import State


def state_kinds() -> dict[str, tuple[State, str]]:
    """Message kind -> (a state that sends it, recipient: society or experts), over all workflows."""
    out: dict[str, tuple[State, str]] = {}
    for wf in (k.workflow for k in call_kinds.all_kinds()):
        for state in wf.states:
            for note in state.notify:
                out.setdefault(note.kind, (state, note.to))
    return out


def kinds() -> set[str]:
    """Every message kind sent: by a state of some workflow, or as a reminder."""
    return set(state_kinds()) | set(contexts.REMINDER_KINDS) | {contexts.ANCHOR_KIND}


def samples() -> dict[str, dict[str, Any]]:
    """A sample context of every kind, of the exact shape it is sent with."""
    return contexts.samples(state_kinds())


def check(override: str | None = None) -> render.CheckReport:
    """`templates check`: every template (built-in, or overridden in `override`) against its kind."""
    return render.check(samples(), override)


def _reachable(wf: Any, start: str) -> set[str]:
    """The states an application in `start` can still get to (start included)."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for m in wf.moves:
            if here in m.sources and m.dest not in seen:
                seen.add(m.dest)
                todo.append(m.dest)
    return seen


def not_applicable(conn: Connection, kind: str, app: Any, workflow: str) -> str | None:
    """Why `kind` is no message `app` ever gets, or None: the state that sends it (or, for a
    reminder, the state that schedules its deadline) must be one the application is in, was
    in, or can still reach in its workflow."""
    wf = call_kinds.of(workflow).workflow
    if kind == contexts.ANCHOR_KIND:
        return "it goes to the auditors, not about an application"
    if kind in contexts.REMINDER_KINDS:
        main = contexts.REMINDER_KINDS[kind]
        states = [st for st in wf.states
                  if any(sp.kind == main and sp.action == "advance" for sp in st.schedule)]
        what = f"reminds of the {main} deadline, which"
    else:
        states = [st for st in wf.states if any(n.kind == kind for n in st.notify)]
        what = "is sent on entering"
    if not states:
        return f"the {workflow} workflow never sends it"
    names = {st.name for st in states}
    if kind in contexts.REMINDER_KINDS:  # a reminder only while the deadline is ahead
        if app.state in names:
            return None
        return (f"it {what} applications in {', '.join(sorted(names))} have; "
                f"{app.id} is {app.state}")
    past = set(conn.execute(select(AuditEvent.to_state).where(
        AuditEvent.application_id == app.id).distinct()).scalars())
    if names & (_reachable(wf, app.state) | past):
        return None
    return (f"it {what} {', '.join(sorted(names))}, which {app.id} ({app.state}) never was in "
            "and can no longer reach")


def preview(conn: Connection, kind: str, app_id: str, expert_id: str | None = None,
            now: datetime | None = None) -> tuple[dict[str, Any], str, str]:
    """The context `kind` would get for a real application: (context, recipient, language)."""
    now = now or clock.now()
    a, s = Application.__table__, Society.__table__
    app = conn.execute(
        select(a, s.c.email.label("society_email"), s.c.name.label("society_name"),
               s.c.name_en.label("society_name_en"), s.c.language.label("society_language"))
        .join(s, s.c.id == a.c.society_id).where(a.c.id == app_id)).first()
    if app is None:
        raise NotFound(f"no application {app_id!r}")
    call = engine.load_call(conn, app.call_id)
    senders = state_kinds()
    if kind not in kinds():
        raise NotFound(f"no message kind {kind!r}; kinds: {', '.join(sorted(kinds()))}")
    why = not_applicable(conn, kind, app, call.workflow)
    if why:
        raise NotFound(f"{kind} does not apply to {app_id}: {why}")
    expert = None
    needs_expert = kind == "remind_review" or (kind in senders and senders[kind][1] == "experts")
    if needs_expert:
        e = Expert.__table__
        stmt = (select(e).join(Assignment, Assignment.expert_id == e.c.id)
                .where(Assignment.application_id == app_id).order_by(e.c.id))
        if expert_id:
            stmt = stmt.where(e.c.id == expert_id)
        expert = conn.execute(stmt).first()
        if expert is None:
            raise NotFound(f"no expert {'%r ' % expert_id if expert_id else ''}is assigned "
                           f"to {app_id}; a {kind} message goes to an assigned expert")
    language = (expert.language if expert else app.society_language) or call.language
    recipient = expert.email if expert else app.society_email
    shared = contexts.common(call, now)
    if kind in contexts.REMINDER_KINDS:
        main = contexts.REMINDER_KINDS[kind]
        due = conn.execute(select(Deadline.due_at).where(
            Deadline.key == f"{call.id}:{main}")).scalar()
        due = due or {"declaration_closes": call.calendar.declaration_closes,
                      "reviews_due": call.calendar.review_due,
                      "report_due": call.calendar.assessment_due}[main]
        deadline = contexts.deadline(main, due, now)
        if expert is not None:
            return contexts.expert_reminder(shared, deadline, expert, [app]), recipient, language
        return contexts.society_reminder(shared, deadline, app), recipient, language
    wf = call_kinds.of(call.workflow).workflow
    state = next((st for st in wf.states if any(n.kind == kind for n in st.notify)), None)
    if state is None:
        raise NotFound(f"workflow {call.workflow} sends no {kind!r} message")
    for spec in state.schedule:  # a deadline per checkpoint (say) needs the application to have one
        if spec.per and getattr(app, spec.per, None) is None:
            raise NotFound(f"{app_id} has no {spec.per} yet (it is {app.state}): a {kind} message "
                           f"names its {spec.kind} deadline, so preview it with an application "
                           f"that has a {spec.per}")
    n = Notification.__table__
    queued = conn.execute(select(n.c.context).where(
        n.c.application_id == app_id, n.c.kind == kind,
        n.c.recipient_id == (expert.id if expert else app.society_id))
        .order_by(n.c.id.desc()).limit(1)).scalar()
    if queued is not None:  # the message already written: exactly what it says (its reasons)
        return queued, recipient, language
    ctx = contexts.state_change(shared, app, state, entry_rows(call, state, app, {}, now),
                                expert=expert)
    return ctx, recipient, language
