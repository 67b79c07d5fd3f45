"""Reminders before deadlines: only to those who still have something to do.

A reminder is a deadline row with action "remind" (written by
`lifecycle.core.deadlines.schedule` beside the closing deadline it belongs to, one
per offset of the call's `[reminders]`). When it fires, one query per kind
finds who still has something to do, and their messages (contexts built by
`notifications.contexts`) go to the outbox in the same transaction. A reminder
whose moment passed while no scheduler ran is sent only while it is still
useful (before its deadline) and when no later reminder of the same deadline
is also due; otherwise it is skipped, with an audit note saying why.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core.callconfig import CallConfig
from lifecycle.core.deadlines import REMIND
from lifecycle.core.models import Application, Assignment, Call, Deadline, Expert, Society
from notifications import contexts
from notifications.queue import Message, enqueue
from states.assessment import ASSESSMENT_DUE
from states.declaration import DRAFT
from states.review import UNDER_REVIEW

_apps = Application.__table__
_soc = Society.__table__
_deadlines = Deadline.__table__

Loader = Callable[[Connection, CallConfig, dict, str, datetime, str], list[Message]]


@dataclass(frozen=True)
class Audience:
    """Who a deadline kind's reminders go to, and the message kind they get."""

    message: str
    to: str
    load: Loader
    help: str


def _society_messages(kind: str, states: tuple[str, ...], extra: Any = None,
                      per: str | None = None) -> Loader:
    def load(conn: Connection, call: CallConfig, deadline: dict, label: str,
             now: datetime, value: str = "") -> list[Message]:
        stmt = (select(_apps.c.id, _apps.c.title, _apps.c.title_en, _apps.c.category,
                       _apps.c.requested_amount, _soc.c.id.label("society_id"),
                       _soc.c.name.label("society_name"), _soc.c.name_en.label("society_name_en"),
                       _soc.c.email, _soc.c.language)
                .join(_soc, _soc.c.id == _apps.c.society_id)
                .where(_apps.c.call_id == call.id, _apps.c.state.in_(states))
                .order_by(_apps.c.id))
        if extra is not None:
            stmt = stmt.where(extra)
        if per and value and per in _apps.c:        # a deadline per value, e.g. a checkpoint
            stmt = stmt.where(_apps.c[per] == value)
        out = []
        shared = contexts.common(call, now)
        for r in conn.execute(stmt):
            context = contexts.society_reminder(shared, deadline, r)
            key = f"{kind}:{r.id}:{value + ':' if value else ''}{label}"
            out.append(Message(kind, "society", r.society_id, r.email,
                               r.language or call.language, key, context,
                               call.id, r.id))
        return out
    return load


def _experts_missing_scores(conn: Connection, call: CallConfig, deadline: dict, label: str,
                            now: datetime, value: str = "",
                            only: str | None = None) -> list[Message]:
    """One message per expert (or the expert `only`), listing what it has not scored yet."""
    a, e = Assignment.__table__, Expert.__table__
    rows = conn.execute(
        select(e.c.id.label("expert_id"), e.c.name, e.c.name_en, e.c.email, e.c.language,
               _apps.c.id, _apps.c.title, _apps.c.title_en, _apps.c.category,
               _apps.c.requested_amount)
        .join(a, a.c.expert_id == e.c.id).join(_apps, _apps.c.id == a.c.application_id)
        .where(a.c.call_id == call.id, a.c.status == "assigned",
               _apps.c.state == UNDER_REVIEW, *([e.c.id == only] if only else []))
        .order_by(e.c.id, _apps.c.id))
    by_expert: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_expert[r.expert_id].append(r)
    out = []
    shared = contexts.common(call, now)
    for expert_id, items in by_expert.items():
        first = items[0]
        expert = SimpleNamespace(id=expert_id, name=first.name, name_en=first.name_en)
        context = contexts.expert_reminder(shared, deadline, expert, items)
        out.append(Message("remind_review", "expert", expert_id, first.email,
                           first.language or call.language,
                           f"remind_review:{call.id}:{expert_id}:{label}", context, call.id,
                           items[0].id if len(items) == 1 else None))
    return out


AUDIENCES: dict[str, Audience] = {
    "declaration_closes": Audience(
        "remind_declaration", "society", _society_messages("remind_declaration", (DRAFT,)),
        "societies with drafts not yet submitted"),
    "reviews_due": Audience(
        "remind_review", "expert", _experts_missing_scores,
        "experts with applications still to score"),
    "report_due": Audience(
        "remind_report", "society",
        _society_messages("remind_report", (ASSESSMENT_DUE,),
                          _apps.c.assessment_grade.is_(None), per="checkpoint"),
        "societies whose performance report is due"),
}


def fire(conn: Connection, row: Any, now: datetime) -> tuple[str, str, int]:
    """Send (enqueue) one reminder deadline's messages, or say why it is skipped.

    Returns (outcome, note, messages): outcome "fired" or "skipped".
    """
    main_kind = row.fires
    label = row.kind.rsplit(":", 1)[-1]
    main_key = ":".join([row.call_id, main_kind] + ([row.application_id] if row.application_id
                                                     else []))
    main = conn.execute(select(_deadlines.c.due_at, _deadlines.c.fired_at)
                        .where(_deadlines.c.key == main_key)).first()
    if main is None:
        return "skipped", f"no {main_kind} deadline for {row.call_id}; nothing to remind of", 0
    if main.fired_at is not None or now >= main.due_at:
        return "skipped", (f"too late: {main_kind} was due {main.due_at:%Y-%m-%d %H:%M}; "
                           f"a reminder would no longer help"), 0
    later = conn.execute(
        select(_deadlines.c.kind).where(
            _deadlines.c.call_id == row.call_id, _deadlines.c.fires == main_kind,
            _deadlines.c.action == REMIND, _deadlines.c.fired_at.is_(None),
            _deadlines.c.due_at > row.due_at, _deadlines.c.due_at <= now)
        .order_by(_deadlines.c.due_at.desc()).limit(1)).scalar()
    if later:
        return "skipped", f"superseded: the later reminder {later} is also due", 0
    base, _, value = main_kind.partition(":")
    audience = AUDIENCES.get(base)
    if audience is None:
        return "skipped", f"no reminder audience is defined for {main_kind}", 0
    config = conn.execute(select(Call.config).where(Call.id == row.call_id)).scalar()
    call = CallConfig.model_validate(config)
    messages = audience.load(conn, call, contexts.deadline(base, main.due_at, now), label, now,
                             value)
    enqueue(conn, messages, now, call.mail.holds)
    if not messages:
        return "fired", f"nobody to remind: no {audience.help}", 0
    return "fired", f"{len(messages)} {audience.message} reminder(s) to {audience.help}", \
        len(messages)


def remind_expert(conn: Connection, call_id: str, expert_id: str, actor: Any) -> int:
    """Staff's one-click reminder to one expert who still owes scores: one message through
    the outbox (a second click in the same minute is the same message), audited."""
    from lifecycle.core import audit, clock
    from lifecycle.engine import engine, permissions

    call = engine.load_call(conn, call_id)
    actor = permissions.require(conn, actor, "notify.send", call)
    now = clock.now()
    due = contexts.deadline("reviews_due", call.calendar.review_due, now)
    messages = _experts_missing_scores(conn, call, due, f"manual-{now:%Y%m%dT%H%M}", now,
                                       only=expert_id)
    sent = enqueue(conn, messages, now)
    audit.record(conn, actor, [audit.Event("remind", call_id, payload={
        "expert": expert_id, "kind": "remind_review", "queued": sent,
        "applications": len(messages[0].context.get("applications", [])) if messages else 0})])
    return sent
