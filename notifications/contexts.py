"""What each message kind's template receives: the kinds, sample contexts, and real ones for previews.

State-change messages get the context the engine builds when an application
enters a state (`lifecycle.core.engine._context`, plus `expert` for messages to
experts); reminders get the contexts built in `lifecycle.scheduling.reminders`. The
samples are built by those same functions, so `templates check` follows
their shape.
"""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core.errors import NotFound

REMINDER_KINDS = {"remind_declaration": "declaration_closes", "remind_review": "reviews_due",
                  "remind_report": "report_due"}


def state_kinds() -> dict[str, tuple[Any, str]]:
    """Message kind -> (a state that sends it, recipient: society or experts), over all workflows."""
    from states.workflows import WORKFLOWS

    out: dict[str, tuple[Any, str]] = {}
    for wf in WORKFLOWS.values():
        for state in wf.states:
            for note in state.notify:
                out.setdefault(note.kind, (state, note.to))
    return out


def kinds() -> set[str]:
    return set(state_kinds()) | set(REMINDER_KINDS)


def _sample_call() -> Any:
    from lifecycle.core.callconfig import CallConfig

    return CallConfig.model_validate({
        "id": "2025-project", "title": "2025年度学会重点活动项目资助",
        "title_en": "2025 key-activity project funding", "budget_total": 1_000_000,
        "calendar": {"declaration_opens": "2025-03-03T09:00", "declaration_closes":
                     "2025-04-07T17:00", "review_due": "2025-05-06T17:00",
                     "assessment_due": "2025-12-15T17:00"},
        "categories": [{"id": "academic", "name": "学术会议", "cap": 100000}]})


def _sample_app() -> Any:
    return SimpleNamespace(
        id="2025-project-00001", title="示例项目", title_en="Sample project", category="academic",
        requested_amount=50000, granted_amount=50000, score=86.5, decision_reason="示例",
        society_id="S001", society_name="市示例学会", society_name_en="City Sample Society",
        society_email="s@example.org", society_language="zh", version=1, state="declared",
        checkpoint="final")


def sample(kind: str) -> dict[str, Any]:
    """A context of the exact shape `kind` receives, with sample values."""
    from lifecycle.scheduling import reminders

    now = datetime(2025, 4, 1, 9, 0)
    call = _sample_call()
    app = _sample_app()
    if kind in REMINDER_KINDS:
        return _reminder_context(kind, call, [app], now, reminders.deadline_ctx(
            REMINDER_KINDS[kind], datetime(2025, 4, 7, 17, 0), now),
            {"id": "E001", "name": "示例专家", "name_en": "Sample Expert"})
    state, to = state_kinds()[kind]
    ctx = _engine_context(call, app, state, ["示例原因"], now)
    if to == "experts":
        ctx = {**ctx, "expert": {"id": "E001", "name": "示例专家"}}
    return ctx


def _engine_context(call: Any, app: Any, state: Any, because: list[str],
                    now: datetime) -> dict[str, Any]:
    """The context the engine gives a message when `app` enters `state` (its own functions)."""
    from lifecycle.core import engine

    shared = {"call": {"id": call.id, "title": call.title, "title_en": call.title_en},
              "at": now.isoformat(sep=" ")}
    rows = engine._deadlines_of(call, state, app, {}, now)
    due = {spec.kind: row.due_at.isoformat(sep=" ") for spec, row in zip(state.schedule, rows)}
    return engine._context(shared, app, state, {}, because, due)


def _reminder_context(kind: str, call: Any, apps: list[Any], now: datetime, deadline: dict,
                      expert: dict | None) -> dict[str, Any]:
    """Built like `lifecycle.scheduling.reminders` builds it (same helper functions)."""
    from lifecycle.scheduling import reminders

    base = {"call": reminders._call_ctx(call), "deadline": deadline, "at": now.isoformat(sep=" ")}
    if kind == "remind_review":
        return {**base, "expert": expert, "applications": [reminders._app_ctx(a) for a in apps],
                "missing": len(apps)}
    a = apps[0]
    return {**base, "application": reminders._app_ctx(a),
            "society": {"id": a.society_id, "name": a.society_name,
                        "name_en": a.society_name_en}}


def preview(conn: Connection, kind: str, app_id: str, expert_id: str | None = None,
            now: datetime | None = None) -> tuple[dict[str, Any], str, str]:
    """The context `kind` would get for a real application: (context, recipient, language)."""
    from lifecycle.core import clock, engine
    from lifecycle.core.models import Application, Assignment, Deadline, Expert, Society
    from lifecycle.scheduling import reminders
    from states.workflows import WORKFLOWS

    now = now or clock.now()
    a, s = Application.__table__, Society.__table__
    app = conn.execute(
        select(a, s.c.email.label("society_email"), s.c.name.label("society_name"),
               s.c.name_en.label("society_name_en"), s.c.language.label("society_language"))
        .join(s, s.c.id == a.c.society_id).where(a.c.id == app_id)).first()
    if app is None:
        raise NotFound(f"no application {app_id!r}")
    call = engine.load_call(conn, app.call_id)
    if kind not in kinds():
        raise NotFound(f"no message kind {kind!r}; kinds: {', '.join(sorted(kinds()))}")
    expert = None
    needs_expert = kind == "remind_review" or (kind in state_kinds()
                                               and state_kinds()[kind][1] == "experts")
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
    if kind in REMINDER_KINDS:
        main = REMINDER_KINDS[kind]
        due = conn.execute(select(Deadline.due_at).where(
            Deadline.key == f"{call.id}:{main}")).scalar()
        due = due or {"declaration_closes": call.calendar.declaration_closes,
                      "reviews_due": call.calendar.review_due,
                      "report_due": call.calendar.assessment_due}[main]
        ctx = _reminder_context(kind, call, [app], now, reminders.deadline_ctx(main, due, now),
                                {"id": expert.id, "name": expert.name, "name_en": expert.name_en}
                                if expert else None)
        return ctx, recipient, language
    wf = WORKFLOWS[call.workflow]
    state = next((st for st in wf.states if any(n.kind == kind for n in st.notify)), None)
    if state is None:
        raise NotFound(f"workflow {call.workflow} sends no {kind!r} message")
    for spec in state.schedule:  # a deadline per checkpoint (say) needs the application to have one
        if spec.per and getattr(app, spec.per, None) is None:
            raise NotFound(f"{app_id} has no {spec.per} yet (it is {app.state}): a {kind} message "
                           f"names its {spec.kind} deadline, so preview it with an application "
                           f"that has a {spec.per}")
    ctx = _engine_context(call, app, state, [], now)
    if expert:
        ctx = {**ctx, "expert": {"id": expert.id, "name": expert.name}}
    return ctx, recipient, language
