"""Advance a batch: the one way an application's state changes (invariant 1).

`advance` follows the same steps for every trigger of every workflow, and
`create_applications` is the same path for an application's first state.
"""
from __future__ import annotations

import getpass
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from lifecycle.core import audit, bulk, clock
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.db import transaction
from lifecycle.core.errors import UserError
from lifecycle.core.machine import for_workflow
from lifecycle.core.models import Application, Assignment, Call, Deadline, Expert, Society
from lifecycle.scheduling.scheduler import DeadlineRow, schedule
from notifications.outbox import Message, enqueue
from states.spec import ADMIN, SCHEDULER, Context, Move, State

_apps = Application.__table__
_after_commit: list[Callable[["Report"], None]] = []


class EngineError(UserError):
    """A refused request; the message says why and what is possible instead."""


class ConflictError(EngineError):
    """Someone else changed the same applications first; nothing was written."""


class NothingToMove(EngineError):
    """No application of the call is in a state that can take the trigger (a deadline's no-op)."""


def default_actor() -> str:
    return os.environ.get("STARFUND_ACTOR") or getpass.getuser()


def role_of(actor: str) -> str:
    """Who may act: the scheduler fires deadlines; every named person is an administrator."""
    return SCHEDULER if actor == SCHEDULER else ADMIN


@dataclass
class Report:
    """What an advance did (or, on a dry run, would do)."""

    call_id: str
    trigger: str
    actor: str
    dry_run: bool
    moved: Counter = field(default_factory=Counter)          # (from, to) -> count
    skipped: Counter = field(default_factory=Counter)        # reason -> count
    moved_ids: list[str] = field(default_factory=list)
    skipped_ids: dict[str, str] = field(default_factory=dict)
    notifications: int = 0
    deadlines: int = 0

    @property
    def moved_total(self) -> int:
        return sum(self.moved.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.call_id, "trigger": self.trigger, "actor": self.actor,
                "dry_run": self.dry_run, "moved": self.moved_total,
                "skipped": self.skipped_total,
                "moves": [{"from": f, "to": t, "count": n} for (f, t), n in
                          sorted(self.moved.items())],
                "skip_reasons": [{"reason": r, "count": n} for r, n in
                                 self.skipped.most_common()],
                "notifications": self.notifications, "deadlines": self.deadlines}


def on_commit(hook: Callable[[Report], None]) -> None:
    """Register a signal run after each committed advance (e.g. wake the outbox sender)."""
    _after_commit.append(hook)


def committed(report: Report) -> None:
    """Signal the after-commit hooks; a caller that passed `joined=` calls this after its commit."""
    for hook in _after_commit:
        hook(report)


@contextmanager
def _joined(conn: Connection) -> Iterator[Session]:
    """A session inside the caller's transaction, in a savepoint: an error undoes only the advance."""
    with Session(bind=conn, join_transaction_mode="create_savepoint",
                 expire_on_commit=False) as session:
        with session.begin():
            yield session


def load_call(conn: Connection, call_id: str, lock: bool = False) -> CallConfig:
    """The call's validated configuration; with `lock`, hold the call row until commit."""
    stmt = select(Call.config).where(Call.id == call_id)
    if lock and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update(nowait=True)
    try:
        config = conn.execute(stmt).scalar()
    except OperationalError as e:
        if "could not obtain lock" in str(e) or "LockNotAvailable" in type(e.orig).__name__:
            raise ConflictError(f"call {call_id} is being advanced by another process right now; "
                                "nothing was written, run the command again") from None
        raise
    if config is None:
        raise EngineError(f"no call {call_id!r}: create it with `starfund call create FILE`")
    return CallConfig.model_validate(config)


def _candidates(conn: Connection, call_id: str, states: Iterable[str],
                only: list[str] | None) -> list[Any]:
    """The applications of the call in `states`, with their society, as light named tuples."""
    s = Society.__table__
    stmt = (select(*bulk.json_as_text(_apps.c), s.c.email.label("society_email"),
                   s.c.name.label("society_name"), s.c.name_en.label("society_name_en"),
                   s.c.language.label("society_language"), s.c.annual_inspection_passed,
                   s.c.penalty)
            .join(s, s.c.id == _apps.c.society_id)
            .where(_apps.c.call_id == call_id, _apps.c.state.in_(list(states)))
            .order_by(_apps.c.declared_at, _apps.c.id))
    if only:
        stmt = stmt.where(_apps.c.id.in_(only))
    return bulk.load_rows(conn, stmt, [c.name for c in _apps.c if isinstance(c.type, JSON)])


def _decide(app: Any, options: list[Move], ctx: Context) -> tuple[Move | None, list[str]]:
    """The first move whose conditions all hold, and the reasons earlier options failed."""
    reasons: list[str] = []
    for move in options:
        failed = next((r for r in (c(app, ctx) for c in move.conditions) if r), None)
        if failed is None:
            return move, reasons
        reasons.append(failed)
    return None, reasons


def advance(db: Engine, call_id: str, trigger: str, actor: str | None = None, *,
            only: list[str] | None = None, dry_run: bool = False,
            options: dict[str, Any] | None = None,
            within: Callable[[Connection], None] | None = None,
            joined: Connection | None = None) -> Report:
    """Fire `trigger` on every application of the call that can take it, as one transaction.

    `within` is a write that belongs to this advance (e.g. the objection that causes
    it): it runs in the same transaction right after the call is locked, before the
    candidates are loaded, so the move and its cause commit or roll back together.

    `joined` runs the whole advance inside the caller's open transaction (in a
    savepoint) instead of its own: the scheduler claims a deadline, advances and
    marks the deadline fired in one transaction; the caller commits, then calls
    `committed(report)`.

    Steps, in order:
    1. veto: the trigger exists in the call's workflow and the actor may fire it;
    2. lock the call (PostgreSQL row lock; SQLite's write lock) and load the candidates
       in the trigger's source states with one query;
    3. prepare: each move's loaders run once for the whole batch;
    4. decide: per application, the first move whose conditions hold, else a skip reason;
    5. save: new states with a version check, and the values the moves computed;
    6. log: one hash-chained audit event per move;
    7. queue the mail: the destination states' notifications go to the outbox;
    8. schedule: the destination states' deadlines are written;
    9. commit (a dry run rolls back instead), then signal the after-commit hooks.
    Any error rolls the whole batch back: it moves whole or not at all.
    """
    actor = actor or default_actor()
    now = clock.now()
    with (transaction(db) if joined is None else _joined(joined)) as session:
        conn = session.connection()
        call = load_call(conn, call_id, lock=True)
        wm = for_workflow(call.workflow)
        if trigger not in wm.triggers:
            raise EngineError(f"workflow {call.workflow} has no trigger {trigger!r}; "
                              f"possible now: {_possible_now(conn, call_id, wm)}")
        by_source = wm.moves_for(trigger)
        role = role_of(actor)
        if not any(role in m.who for ms in by_source.values() for m in ms):
            raise EngineError(f"{actor} ({role}) may not fire {trigger}; it is for "
                              f"{'/'.join(sorted({w for ms in by_source.values() for m in ms for w in m.who}))}")
        if only:
            _check_only(conn, call_id, only)
        if within is not None:
            within(conn)
        apps = _candidates(conn, call_id, by_source, only)
        if not apps:
            raise NothingToMove(f"no application of {call_id} can take {trigger} now "
                              f"(it needs state {', '.join(by_source)}); "
                              f"possible now: {_possible_now(conn, call_id, wm, only)}")
        ctx = Context(call=call, now=now, actor=actor, options=options or {})
        seen: set[Any] = set()
        for moves in by_source.values():
            for move in moves:
                for loader in move.prepare:
                    if loader not in seen:
                        seen.add(loader)
                        loader(conn, ctx, apps)

        report = Report(call_id, trigger, actor, dry_run)
        decided: list[tuple[Any, Move, list[str]]] = []
        for app in apps:
            options_ = [m for m in by_source[app.state] if role in m.who]
            move, reasons = _decide(app, options_, ctx)
            if move is None:
                reason = reasons[0] if reasons else "not allowed"
                report.skipped[reason] += 1
                report.skipped_ids[app.id] = reason
            else:
                decided.append((app, move, reasons))
                report.moved[(app.state, move.dest)] += 1
                report.moved_ids.append(app.id)
        if decided:
            _write(conn, call, wm.workflow, trigger, actor, now, decided, ctx, report)
        if dry_run:
            session.rollback()
            return report
    if joined is None:
        committed(report)
    return report


def _check_only(conn: Connection, call_id: str, only: list[str]) -> None:
    found = set(conn.execute(select(_apps.c.id).where(_apps.c.call_id == call_id,
                                                        _apps.c.id.in_(only))).scalars())
    missing = [i for i in only if i not in found]
    if missing:
        raise EngineError(f"no application {', '.join(missing)} in call {call_id}")


def _possible_now(conn: Connection, call_id: str, wm, only: list[str] | None = None) -> str:
    stmt = select(_apps.c.state).where(_apps.c.call_id == call_id).distinct()
    if only:
        stmt = stmt.where(_apps.c.id.in_(only))
    states = set(conn.execute(stmt).scalars())
    return ", ".join(wm.triggers_from(states)) or "none (no application is in a state with moves)"


def _write(conn: Connection, call: CallConfig, workflow, trigger: str, actor: str, now: datetime,
           decided: list[tuple[Any, Move, list[str]]], ctx: Context, report: Report) -> None:
    """Save, log, queue the mail and schedule, for all moved applications at once.

    States go in one version-checked statement per (destination, columns) group
    and the other rows straight through the driver (lifecycle.core.bulk); a batch of
    100,000 stays within a small factor of the raw driver doing the same writes.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = defaultdict(list)
    updates = ctx.updates
    for app, move, _ in decided:
        extra = updates.get(app.id)
        if extra:
            columns = tuple(sorted(extra))
            groups[(move.dest, columns)].append([app.id, app.version,
                                                 *(extra[c] for c in columns)])
        else:
            groups[(move.dest, ())].append([app.id, app.version])
    written = 0
    for (dest, columns), rows in groups.items():
        for start in range(0, len(rows), 20000):
            written += bulk.update_versioned(conn, _apps, {"state": dest, "updated_at": now},
                                             columns, rows[start:start + 20000])
    del groups
    if written != len(decided):
        raise ConflictError(f"{len(decided) - written} application(s) of {call.id} were changed by "
                            "someone else during this advance; nothing was written, run it again")

    def events() -> Iterator[audit.Event]:
        options = ctx.options
        for app, move, reasons in decided:
            payload: dict[str, Any] = {"version": app.version + 1}
            if reasons:
                payload["because"] = reasons
            extra = updates.get(app.id)
            if extra:
                payload["set"] = extra
            if options:
                payload["options"] = options
            yield audit.Event(trigger, call.id, app.id, app.state, move.dest, payload)

    audit.record(conn, actor, events(), at=now)
    dest_state = {s.name: s for s in workflow.states}
    entered = [(app, dest_state[move.dest], updates.get(app.id, {}), reasons)
               for app, move, reasons in decided]
    report.notifications, report.deadlines = enter_states(conn, call, entered, now)
    effects: dict[Any, list[Any]] = {}
    for app, move, _ in decided:
        for effect in move.effects:
            effects.setdefault(effect, []).append(app)
    for effect, moved in effects.items():
        effect(conn, ctx, moved)


def enter_states(conn: Connection, call: CallConfig,
                 entered: list[tuple[Any, State, dict, list[str]]],
                 now: datetime) -> tuple[int, int]:
    """Queue the notifications and write the deadlines of states just entered.

    Messages are enqueued every few thousand applications, so a batch of 100,000
    never holds all its rendered contexts in memory at once.
    """
    messages: list[Message] = []
    queued = 0
    shared = {"call": {"id": call.id, "title": call.title, "title_en": call.title_en},
              "at": now.isoformat(sep=" ")}
    expert_apps = [app.id for app, state, _, _ in entered
                   if any(n.to == "experts" for n in state.notify)]
    experts = _assigned_experts(conn, call.id, expert_apps) if expert_apps else {}
    deadlines: dict[str, DeadlineRow] = {}
    for app, state, extra, because in entered:
        version = app.version + 1
        rows = _deadlines_of(call, state, app, extra, now)
        for row in rows:
            deadlines.setdefault(row.key, row)
        due = {spec.kind: row.due_at.isoformat(sep=" ") for spec, row in zip(state.schedule, rows)}
        for note in state.notify:
            context = _context(shared, app, state, extra, because, due)
            if note.to == "society":
                messages.append(Message(
                    note.kind, "society", app.society_id, app.society_email,
                    app.society_language or call.language,
                    f"{note.kind}:{app.id}:v{version}:society", context, call.id, app.id))
            else:
                for ex in experts.get(app.id, []):
                    messages.append(Message(
                        note.kind, "expert", ex.id, ex.email, ex.language or call.language,
                        f"{note.kind}:{app.id}:v{version}:expert:{ex.id}",
                        {**context, "expert": {"id": ex.id, "name": ex.name}}, call.id, app.id))
        if len(messages) >= 5000:
            queued += enqueue(conn, messages, now)
            messages = []
    queued += enqueue(conn, messages, now)
    schedule(conn, _own_entries(conn, list(deadlines.values())))
    return queued, len(deadlines)


def _own_entries(conn: Connection, wanted: list[DeadlineRow]) -> list[DeadlineRow]:
    """The deadline rows these entries still need, each keyed as the entry it belongs to.

    A pending deadline is one (call, kind, due time): applications entering a state
    while a row of the same kind, due at the same time, has not fired yet share
    that row (a batch entering at one moment, or several batches before a fixed
    date), so nothing is written twice. An entry finds no such row when the
    deadline it needs already fired (an application back in review after an
    upheld objection, drafts imported after the declaration closed, a project
    reaching a checkpoint late) or falls at another time (a notice reopened
    later runs until later): it gets a row of its own. The first entry keeps
    the plain key (`2025-project:notice_ends`), the n-th gets `#n`
    (`2025-project:notice_ends#2`). Keys are chosen inside the transaction
    that writes the entry (an advance holds the call's lock), so a retried
    advance chooses the same keys, and the insert skips a key already there
    (two imports at once may choose the same key: for the same due time, so
    sharing the row is right).
    """
    if not wanted:
        return []
    d = Deadline.__table__
    found = conn.execute(
        select(d.c.key, d.c.call_id, d.c.kind, d.c.application_id, d.c.action, d.c.due_at,
               d.c.fired_at)
        .where(d.c.call_id.in_(sorted({r.call_id for r in wanted})),
               d.c.kind.in_(sorted({r.kind for r in wanted})))).all()
    same: dict[tuple, list[Any]] = defaultdict(list)
    for e in found:
        same[(e.call_id, e.kind, e.application_id, e.action)].append(e)
    out = []
    for row in wanted:
        rows = same[(row.call_id, row.kind, row.application_id, row.action)]
        if any(e.fired_at is None and e.due_at == row.due_at for e in rows):
            continue                                    # this entry's deadline is pending
        keys = {e.key for e in rows}
        if row.key in keys:
            row.entry = len(rows) + 1
            while row.key in keys:
                row.entry += 1
        out.append(row)
    return out


def _deadlines_of(call: CallConfig, state: State, app: Any, extra: dict,
                  now: datetime) -> list[DeadlineRow]:
    """The deadlines `state` schedules for `app` entering it now, one per Schedule record."""
    rows = []
    for spec in state.schedule:
        if spec.per:
            value = extra.get(spec.per, getattr(app, spec.per, None))
            rows.append(DeadlineRow(call.id, f"{spec.kind}:{value}", spec.due(call, now, value),
                                    spec.fires, spec.action))
        else:
            rows.append(DeadlineRow(call.id, spec.kind, spec.due(call, now), spec.fires,
                                    spec.action))
    return rows


def _assigned_experts(conn: Connection, call_id: str, app_ids: list[str]) -> dict[str, list[Any]]:
    wanted = set(app_ids)
    rows = conn.execute(select(Assignment.application_id, Expert.id, Expert.email, Expert.name,
                               Expert.language)
                        .join(Expert, Expert.id == Assignment.expert_id)
                        .where(Assignment.call_id == call_id,
                               Assignment.status.in_(("assigned", "submitted")))
                        .order_by(Assignment.application_id, Expert.id))
    out: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        if r.application_id in wanted:
            out[r.application_id].append(r)
    return out


def _context(shared: dict[str, Any], app: Any, state: State, extra: dict,
             because: list[str], due: dict[str, str] | None = None) -> dict:
    """What a template may use; `shared` (the call, the time) is the same for the whole batch.

    `due` holds the times of the deadlines the state just scheduled (e.g. the
    report due date of the checkpoint entered), so a message can name them.
    """
    get = extra.get
    return {
        **shared,
        "application": {"id": app.id, "title": app.title, "title_en": app.title_en,
                        "category": app.category, "requested_amount": app.requested_amount,
                        "granted_amount": get("granted_amount", app.granted_amount),
                        "score": get("score", app.score),
                        "decision_reason": get("decision_reason", app.decision_reason),
                        "checkpoint": get("checkpoint", getattr(app, "checkpoint", None))},
        "society": {"id": app.society_id, "name": app.society_name,
                    "name_en": app.society_name_en},
        "state": state.name, "state_label": state.label,
        "because": because, "due": due or {},
    }


def create_applications(conn: Connection, call: CallConfig, rows: list[dict[str, Any]],
                        actor: str, now: datetime | None = None) -> int:
    """Insert new applications in the workflow's initial state, audited and announced like a move."""
    now = now or clock.now()
    wf = for_workflow(call.workflow).workflow
    initial = wf.state(wf.initial)
    records = [{**r, "call_id": call.id, "state": initial.name, "version": 1,
                "declared_at": r.get("declared_at") or now, "updated_at": now} for r in rows]
    bulk.insert_dicts(conn, _apps, records)
    audit.record(conn, actor, (audit.Event("create", call.id, r["id"], None, initial.name,
                                           {"version": 1}) for r in records), at=now)
    loaded = _candidates(conn, call.id, [initial.name], [r["id"] for r in records]) \
        if len(records) <= 30000 else _candidates(conn, call.id, [initial.name], None)
    new_ids = {r["id"] for r in records}
    entered = [(_Entered(a), initial, {}, []) for a in loaded if a.id in new_ids]
    enter_states(conn, call, entered, now)
    return len(records)


class _Entered:
    """A freshly inserted row seen as just entering its first state (version 0 -> 1)."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name == "version":
            return 0
        return getattr(self._row, name)
