"""Advance a batch: the one way an application's state changes (invariant 1).

`advance` follows the same steps for every trigger of every workflow, and
`create_applications` is the same path for an application's first state.
"""
from __future__ import annotations

import functools
import gc
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Engine, func, select
from sqlalchemy.exc import OperationalError

from lifecycle import kinds
from lifecycle.core import accounts, audit, bulk, clock, deadlines
from lifecycle.core.accounts import Actor
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.errors import NotFound, UserError
from lifecycle.core.models import Application, Assignment, Call, Expert, Society
from lifecycle.core.progress import SILENT, Progress
from lifecycle.engine import permissions
from lifecycle.engine.machine import for_workflow
from notifications import contexts, queue
from notifications.reasons import Reason
from notifications.reasons import data as reason_data
from notifications.reasons import stored as stored_reason
from states.roles import SOCIETY
from states.spec import Context, Move, State

_apps = Application.__table__


class EngineError(UserError):
    """A refused request; the message says why and what is possible instead."""


class ConflictError(EngineError):
    """Someone else changed the same applications first; nothing was written."""


class NoSuchCall(EngineError, NotFound):
    """The call named does not exist (a page answers 404, as for any unknown object)."""


class NothingToMove(EngineError):
    """No application of the call is in a state that can take the trigger (a deadline's no-op)."""


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
    """The first KEEP_IDS moved ids (all of them unless `ids_complete` is False)."""
    skipped_ids: dict[str, str] = field(default_factory=dict)
    """The first KEEP_IDS skipped ids, with why."""
    ids_complete: bool = True
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
        raise NoSuchCall(f"no call {call_id!r}: create it with `starfund call create FILE`")
    return _validated(json.dumps(config, sort_keys=True, default=str))


class DefinitionChanged(EngineError):
    """The call runs on an older definition of its workflow than the code's."""


def definition_changes(call: CallConfig) -> tuple[list[str], list[str]]:
    """What the code's definition of the call's workflow lacks of the call's, and adds."""
    now = kinds.of(call.workflow).workflow.outline()
    kept = set(call.definition_outline)
    return sorted(kept - now), sorted(now - kept)


def refuse_changed_definition(call: CallConfig) -> None:
    """A call keeps the definition it was created with: one the code no longer has must be
    migrated (`starfund call migrate`) before it moves again."""
    if not call.definition or call.definition == kinds.of(call.workflow).workflow.digest:
        return
    gone, added = definition_changes(call)
    lines = [f"  - {x}" for x in gone] + [f"  + {x}" for x in added]
    raise DefinitionChanged(
        f"call {call.id} runs on version {call.definition} of workflow {call.workflow}, but "
        f"this starfund defines version {kinds.of(call.workflow).workflow.digest}; nothing "
        "was moved. What differs:\n" + "\n".join(lines or ["  (conditions or messages)"])
        + f"\nReview it, then `starfund call migrate {call.id}` (a dry run first).")


@functools.lru_cache(maxsize=64)
def _validated(config: str) -> CallConfig:
    """A call's configuration validated once per process per distinct text (a call's
    configuration never changes once stored; the portal loads it on every request)."""
    return CallConfig.model_validate(json.loads(config))


ADVANCE_CHUNK = 5000
"""Applications read, decided and written per chunk of an advance (STARFUND_FAULT_CHUNK_ROWS
sets another, lifecycle.core.bulk): what an advance holds at once, whatever the batch's size."""

KEEP_IDS = 10_000
"""How many moved and skipped ids a `Report` keeps (all of them for any batch up to this)."""

_JSON = tuple(c.name for c in _apps.c if isinstance(c.type, JSON))


class Batch:
    """The candidates of one advance: the call's applications in the trigger's source
    states (`only` those, of `society` only), with their society, in declaration order.

    Never a list: it is read from the database whenever it is iterated, a chunk at a time
    (`chunks`), so a batch of 1,000,000 is never held. A loader that needs the whole batch
    (a ranking, a budget, one per society) reads what it needs from it or, better, asks the
    database for it with one query.
    """

    def __init__(self, conn: Connection, call_id: str, states: Iterable[str],
                 only: list[str] | None = None, society: str | None = None) -> None:
        self._conn = conn
        self.call_id = call_id
        self.states = list(states)
        self.only = only
        self.society = society

    def _where(self, stmt: Any) -> Any:
        stmt = stmt.where(_apps.c.call_id == self.call_id, _apps.c.state.in_(self.states))
        if self.only:
            stmt = stmt.where(_apps.c.id.in_(self.only))
        if self.society is not None:
            stmt = stmt.where(_apps.c.society_id == self.society)
        return stmt

    def chunks(self, size: int | None = None) -> Iterator[list[Any]]:
        """The candidates, `size` (default: the advance's chunk) at a time."""
        s = Society.__table__
        stmt = self._where(
            select(*bulk.json_as_text(_apps.c), s.c.email.label("society_email"),
                   s.c.name.label("society_name"), s.c.name_en.label("society_name_en"),
                   s.c.language.label("society_language"), s.c.annual_inspection_passed,
                   s.c.penalty)
            .join(s, s.c.id == _apps.c.society_id)
            .order_by(_apps.c.declared_at, _apps.c.id))  # no index gives it: see stream_rows
        return bulk.stream_rows(self._conn, stmt, _JSON, size or bulk.chunk_rows(ADVANCE_CHUNK))

    def __iter__(self) -> Iterator[Any]:
        with closing(self.chunks()) as chunks:
            for part in chunks:
                yield from part

    def count(self) -> int:
        """How many candidates (one count over the call's state index: for a progress bar)."""
        return self._conn.execute(self._where(select(func.count()).select_from(_apps))).scalar_one()

    def ids(self) -> Iterator[str]:
        """The candidates' ids: one narrow query, run only if they are read, and then read a
        chunk at a time (on PostgreSQL a server-side cursor: a client-side result would
        hold every id of a batch of 10,000,000 at once, some 400 MB)."""
        result = self._conn.execute(self._where(select(_apps.c.id)).execution_options(
            stream_results=True, yield_per=ADVANCE_CHUNK))
        try:
            yield from result.scalars()
        finally:
            result.close()


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Keep the collector off the objects alive before the batch (the interpreter's, the
    modules'): it then scans only what the batch makes, a chunk at a time. Restored after;
    left alone if someone else froze the heap."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect(0)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _decide(app: Any, options: list[Move], ctx: Context) -> tuple[Move | None, list[str]]:
    """The first move whose conditions all hold, and the reasons earlier options failed.

    The conditions only check; once all of a move's hold, its `decide` functions compute
    the values it writes (into ctx.updates, which `_write` saves with the state).
    """
    reasons: list[str] = []
    for move in options:
        failed = next((r for r in (c(app, ctx) for c in move.conditions) if r), None)
        if failed is None:
            if move.decide:
                values: dict[str, Any] = {}
                for decide in move.decide:
                    values.update(decide(app, ctx))
                if values:
                    ctx.updates[app.id] = values
            return move, reasons
        reasons.append(failed)
    return None, reasons


def advance(conn: Connection, call_id: str, trigger: str, actor: Actor | str, *,
            only: list[str] | None = None, dry_run: bool = False,
            options: dict[str, Any] | None = None, progress: Progress = SILENT) -> Report:
    """Fire `trigger` on every application of the call that can take it, in the caller's
    transaction: `conn` must be inside one (`with sa_engine.begin() as conn:`); the caller commits.

    What the caller writes in the same transaction commits or rolls back with the moves
    (an objection and the move it causes; a deadline claimed, fired and marked). To lock
    the call before such a write, call `load_call(conn, call_id, lock=True)` first.

    The advance runs in a SAVEPOINT: an error undoes only the advance (the caller may
    catch it and go on, as the scheduler does, or let it roll everything back), and a
    dry run rolls back to it, leaving the caller's transaction as it was.

    Steps, in order:
    1. veto: the trigger exists in the call's workflow, the actor is an enabled account (or
       the scheduler) whose roles may fire it (`Move.who`), and the call's separation-of-
       duties rules allow it on this batch (`lifecycle.engine.permissions`); a society's
       account moves only its own society's applications (but for `Move.any_society`);
    2. lock the call (PostgreSQL row lock; SQLite's write lock) and open one query over
       the candidates in the trigger's source states (`Batch`), read a chunk at a time;
    3. prepare: each move's loaders run once for the whole batch (given the `Batch`, not
       its rows: what the whole batch needs comes from the database);
    then, per chunk of ADVANCE_CHUNK applications, in the batch's order (the moves'
    `prepare_chunk` loaders first, given the chunk):
    4. decide: per application, the first move whose conditions (pure checks) all hold,
       else a skip reason; then that move's `decide` functions compute what it writes;
    5. save: new states with a version check, and the values the moves computed;
    6. log: one hash-chained audit event per move;
    7. queue the mail: the destination states' notifications go to the outbox; the
       moves' effects run; the chunk is dropped and the next one read;
    8. schedule: after the last chunk, the deadlines the entered states need are written;
    9. release the savepoint (a dry run rolls back to it instead); the caller commits.
    Any error rolls the whole batch back: it moves whole or not at all.

    `progress` is told each step (loading, preparing, deciding, writing) and the rows of
    each chunk once written; a dry run reports the same.
    """
    if not conn.in_transaction():
        raise RuntimeError("engine.advance needs a connection inside a transaction it does not "
                           "own: `with sa_engine.begin() as conn: advance(conn, ...)`, or advance_in_tx")
    now = clock.now()
    with conn.begin_nested() as savepoint, ExitStack() as stack:
        actor = accounts.resolve(conn, actor)
        call = load_call(conn, call_id, lock=True)
        wm = for_workflow(call.workflow)
        refuse_changed_definition(call)
        if trigger not in wm.triggers:
            raise EngineError(f"workflow {call.workflow} has no trigger {trigger!r}; "
                              f"possible now: {_possible_now(conn, call_id, wm)}")
        by_source = {src: permissions.movable(actor, ms)
                     for src, ms in wm.moves_for(trigger).items()}
        if not any(by_source.values()):
            who = sorted({w for ms in wm.moves_for(trigger).values() for m in ms for w in m.who})
            raise accounts.Refused(f"{actor.label} ({'/'.join(sorted(actor.roles))}) may not "
                                   f"fire {trigger}; it is for {'/'.join(who)}")
        by_source = {src: ms for src, ms in by_source.items() if ms}
        if only:
            _check_only(conn, call_id, only)
        society = actor.society_id if not (actor.roles - {SOCIETY}) and not all(
            m.any_society for ms in by_source.values() for m in ms) else None
        batch = Batch(conn, call_id, by_source, only, society)
        # the candidates are read from here on (one snapshot of them, before the loaders)
        progress.step("loading", total=batch.count)
        chunks = stack.enter_context(closing(batch.chunks()))
        first = next(chunks, None)
        found = first is not None
        if society is not None and not found and only:
            raise accounts.Refused(f"{actor.label} speaks for society {society}; "
                                   f"{', '.join(only)} is not its application")
        permissions.check_moves(conn, actor, call,
                                [m for ms in by_source.values() for m in ms], batch.ids())
        if not found:
            raise NothingToMove(f"no application of {call_id} can take {trigger} now "
                              f"(it needs state {', '.join(by_source)}); "
                              f"possible now: {_possible_now(conn, call_id, wm, only)}")
        ctx = Context(call=call, now=now, actor=actor, options=options or {},
                      history=kinds.history())
        progress.step("preparing")
        seen: set[Any] = set()
        for moves in by_source.values():
            for move in moves:
                for loader in move.prepare:
                    if loader not in seen:
                        seen.add(loader)
                        loader(conn, ctx, batch)

        report = Report(call_id, trigger, actor.label, dry_run)
        writer = _Writer(conn, call, wm.workflow, trigger, actor, now, ctx, report)
        moved, skipped = report.moved, report.skipped
        per_chunk = list(dict.fromkeys(loader for moves in by_source.values()
                                       for move in moves for loader in move.prepare_chunk))
        with _gc_frozen():
            for part in _loaded(first, chunks, progress):
                progress.step("deciding")
                for loader in per_chunk:
                    loader(conn, ctx, part)
                decided: list[tuple[Any, Move, list[str]]] = []
                for app in part:
                    move, reasons = _decide(app, by_source[app.state], ctx)
                    if move is None:
                        reason = reasons[0] if reasons else "not allowed"
                        skipped[reason] += 1
                        if len(report.skipped_ids) < KEEP_IDS:
                            report.skipped_ids[app.id] = reason
                        else:
                            report.ids_complete = False
                    else:
                        decided.append((app, move, reasons))
                        moved[(app.state, move.dest)] += 1
                        if len(report.moved_ids) < KEEP_IDS:
                            report.moved_ids.append(app.id)
                        else:
                            report.ids_complete = False
                rows = len(part)
                del part
                if decided:
                    progress.step("writing")
                    writer.write(decided)
                progress.advance(rows)
            progress.step("scheduling")
            writer.finish()
        if dry_run:
            savepoint.rollback()
    return report


def _loaded(first: list[Any], chunks: Iterator[list[Any]],
            progress: Progress) -> Iterator[list[Any]]:
    """The chunks, the first already read; the step is "loading" while each next one is."""
    yield first
    del first  # no chunk is held here while the engine writes it
    while True:
        progress.step("loading")
        try:
            yield next(chunks)
        except StopIteration:
            return


def advance_in_tx(db: Engine, call_id: str, trigger: str, actor: Actor | str,
                  **kwargs: Any) -> Report:
    """`advance` in a transaction of its own, committed on return: for a caller with nothing
    else to write in it (a script, a benchmark, a test)."""
    with db.begin() as conn:
        return advance(conn, call_id, trigger, actor, **kwargs)


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


class _Writer:
    """Save, log, queue the mail and run the effects of one advance, a chunk at a time.

    States go in one version-checked statement per (destination, columns) group of the
    chunk and the other rows straight through the driver (lifecycle.core.bulk); the
    chunk's values (`ctx.updates`) are dropped once its effects ran. The deadlines the
    entered states need are few (one per kind and due time, shared by the batch) and
    written once, at the end (`finish`).
    """

    def __init__(self, conn: Connection, call: CallConfig, workflow, trigger: str, actor: Any,
                 now: datetime, ctx: Context, report: Report) -> None:
        self.conn, self.call, self.trigger, self.actor, self.now = conn, call, trigger, actor, now
        self.ctx, self.report = ctx, report
        self.dest_state = {s.name: s for s in workflow.states}
        self.entering = _Entering(conn, call, now)
        self.fixed = {"state": None, "updated_at": now}

    def write(self, decided: list[tuple[Any, Move, list[str]]]) -> None:
        conn, call, ctx, now = self.conn, self.call, self.ctx, self.now
        updates = ctx.updates
        groups: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = defaultdict(list)
        for app, move, _ in decided:
            extra = updates.get(app.id)
            if extra and "decision_reason" in extra:  # its code too, so letters can translate it
                extra = {**extra, "reason_code": stored_reason(extra["decision_reason"])}
            if extra:
                columns = tuple(sorted(extra))
                groups[(move.dest, columns)].append([app.id, app.version,
                                                     *(extra[c] for c in columns)])
            else:
                groups[(move.dest, ())].append([app.id, app.version])
        written = 0
        for (dest, columns), rows in groups.items():
            written += bulk.update_versioned(conn, _apps, {"state": dest, "updated_at": now},
                                             columns, rows)
        del groups
        if written != len(decided):
            raise ConflictError(f"{len(decided) - written} application(s) of {call.id} were "
                                "changed by someone else during this advance; nothing was "
                                "written, run it again")
        audit.record(conn, self.actor, self._events(decided), at=now)
        dest_state = self.dest_state
        self.report.notifications += self.entering.enter(
            [(app, dest_state[move.dest], updates.get(app.id) or {}, reasons)
             for app, move, reasons in decided])
        effects: dict[Any, list[Any]] = {}
        for app, move, _ in decided:
            for effect in move.effects:
                effects.setdefault(effect, []).append(app)
        for effect, moved in effects.items():
            effect(conn, ctx, moved)
        for app, _, _ in decided:           # the chunk's values are written: drop them
            updates.pop(app.id, None)

    def _events(self, decided: list[tuple[Any, Move, list[str]]]) -> Iterator[audit.Event]:
        options, updates, trigger, call_id = self.ctx.options, self.ctx.updates, self.trigger, \
            self.call.id
        event = audit.Event
        for app, move, reasons in decided:
            payload: dict[str, Any] = {"version": app.version + 1}
            if reasons:
                payload["because"] = reasons
                if any(isinstance(r, Reason) for r in reasons):  # to say it in Chinese too
                    payload["because_codes"] = [reason_data(r) for r in reasons]
            extra = updates.get(app.id)
            if extra:
                payload["set"] = extra
                if isinstance(extra.get("decision_reason"), Reason):
                    payload["reason_code"] = reason_data(extra["decision_reason"])
            if options:
                payload["options"] = options
            yield event(trigger, call_id, app.id, app.state, move.dest, payload)

    def finish(self) -> None:
        self.report.deadlines = self.entering.finish()


class _Entering:
    """The notifications and deadlines of states just entered, chunk by chunk.

    Each chunk's outbox rows are built as tuples (each context encoded once) and written
    before the next chunk is read; the deadline rows, one per kind and due time however
    many applications need them, are kept and written by `finish`.
    """

    def __init__(self, conn: Connection, call: CallConfig, now: datetime) -> None:
        self.conn, self.call, self.now = conn, call, now
        self.shared = contexts.common(call, now)
        self.scheduled: dict[str, deadlines.DeadlineRow] = {}
        self.tail = queue.row_tail(conn, now)
        self.held_tail = queue.row_tail(conn, now, queue.HELD)
        self.holds = call.mail.holds

    def enter(self, entered: list[tuple[Any, State, dict, list[str]]]) -> int:
        expert_apps = [app.id for app, state, _, _ in entered
                       if any(n.to == "experts" for n in state.notify)]
        experts = _assigned_experts(self.conn, self.call.id, expert_apps) if expert_apps else {}
        return queue.enqueue_rows(self.conn, self._rows(entered, experts))

    def _rows(self, entered: list[tuple[Any, State, dict, list[str]]],
              experts: dict[str, list[Any]]) -> Iterator[tuple]:
        """The outbox rows, made as the writer reads them (on PostgreSQL inside its COPY, so
        the server inserts the first while the next contexts are built); the deadlines
        they need are kept for `finish` on the way."""
        call, shared, scheduled = self.call, self.shared, self.scheduled
        encode, call_id, holds = queue.encode, call.id, self.holds
        tails = {True: self.held_tail, False: self.tail}
        state_change, entry_rows, now = contexts.state_change, deadlines.entry_rows, self.now
        for app, state, extra, because in entered:
            version = app.version + 1
            if state.schedule:
                due = entry_rows(call, state, app, extra, now)
                for row in due:
                    scheduled.setdefault(row.key, row)
            else:
                due = ()
            for note in state.notify:
                if note.to == "society":
                    context = state_change(shared, app, state, due, because=because,
                                           extra=extra)
                    yield ((f"{note.kind}:{app.id}:v{version}:society", call_id, app.id,
                            "society", app.society_id, app.society_email, note.kind,
                            app.society_language or call.language, encode(context))
                           + tails[holds(note.kind)])
                else:
                    for ex in experts.get(app.id, ()):
                        context = state_change(shared, app, state, due, because=because,
                                               extra=extra, expert=ex)
                        yield ((f"{note.kind}:{app.id}:v{version}:expert:{ex.id}", call_id,
                                app.id, "expert", ex.id, ex.email, note.kind,
                                ex.language or call.language, encode(context))
                               + tails[holds(note.kind)])

    def finish(self) -> int:
        wanted = list(self.scheduled.values())
        deadlines.schedule(self.conn, deadlines.own_entries(self.conn, wanted))
        return len(wanted)


def enter_states(conn: Connection, call: CallConfig,
                 entered: list[tuple[Any, State, dict, list[str]]],
                 now: datetime) -> tuple[int, int]:
    """Queue the notifications and write the deadlines of states just entered."""
    entering = _Entering(conn, call, now)
    chunk = bulk.chunk_rows(ADVANCE_CHUNK)
    queued = sum(entering.enter(entered[start:start + chunk])
                 for start in range(0, len(entered), chunk))
    return queued, entering.finish()


def _assigned_experts(conn: Connection, call_id: str, app_ids: list[str]) -> dict[str, list[Any]]:
    """The assigned experts of these applications (a chunk's: one query, by application
    only: an application is of one call, and with the call in the WHERE, SQLite would walk
    the call's whole index every chunk)."""
    rows = conn.execute(select(Assignment.application_id, Expert.id, Expert.email, Expert.name,
                               Expert.name_en, Expert.language)
                        .join(Expert, Expert.id == Assignment.expert_id)
                        .where(Assignment.application_id.in_(app_ids),  # its unique index
                               Assignment.status.in_(("assigned", "submitted")))
                        .order_by(Assignment.application_id, Expert.id))
    out: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        out[r.application_id].append(r)
    return out


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
    new_ids = {r["id"] for r in records}
    del records
    entering = _Entering(conn, call, now)
    only = list(new_ids) if len(new_ids) <= 30000 else None
    with closing(Batch(conn, call.id, [initial.name], only).chunks()) as chunks:
        for part in chunks:
            entering.enter([(_Entered(a), initial, {}, []) for a in part if a.id in new_ids])
    entering.finish()
    return len(new_ids)


class _Entered:
    """A freshly inserted row seen as just entering its first state (version 0 -> 1)."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name == "version":
            return 0
        return getattr(self._row, name)


def pinned(config: CallConfig) -> CallConfig:
    """The call's settings with the current definition of its workflow as the one it keeps."""
    wf = kinds.of(config.workflow).workflow
    return config.model_copy(update={"definition": wf.digest,
                                     "definition_outline": sorted(wf.outline())})


@dataclass
class Migration:
    """What `migrate` did (or, dry, would do): the versions, and the moves per mapping."""

    call_id: str
    old: str
    new: str
    gone: list[str]
    added: list[str]
    moved: dict[str, int]
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.call_id, "from": self.old, "to": self.new, "gone": self.gone,
                "added": self.added, "moved": self.moved, "dry_run": self.dry_run}


def migrate(conn: Connection, call_id: str, mapping: dict[str, str], actor: Actor | str, *,
            dry_run: bool = False) -> Migration:
    """Move a call to the code's definition of its workflow, as one audited act.

    Steps: 1. veto (`call.migrate`); 2. lock the call; 3. count its applications per state
    (one query) and refuse unless every state they hold that the definition lacks is mapped
    to a state it has; 4. move each mapped state's applications in one version-bumping
    UPDATE, one `migrate` audit event each; 5. store the new version with one
    `call_migrate` event. A dry run rolls back to its savepoint.
    """
    with conn.begin_nested() as savepoint:
        actor = permissions.require(conn, actor, "call.migrate")
        call = load_call(conn, call_id, lock=True)
        wf = kinds.of(call.workflow).workflow
        have = {s.name for s in wf.states}
        held = dict(conn.execute(select(Application.state, func.count())
                                 .where(Application.call_id == call_id)
                                 .group_by(Application.state)).all())
        problems = [f"--map {old}=STATE: {n} application(s) are in {old}, which the current "
                    f"definition lacks" for old, n in sorted(held.items())
                    if old not in have and old not in mapping]
        problems += [f"--map {old}={new}: {new} is not a state of workflow {call.workflow} "
                     f"({', '.join(sorted(have))})" for old, new in mapping.items()
                     if new not in have]
        problems += [f"--map {old}={new}: {old} is still a state of the workflow; only states "
                     "that disappeared are mapped" for old, new in mapping.items() if old in have]
        if problems:
            raise EngineError(f"call {call_id} cannot be migrated; nothing was changed:\n  "
                              + "\n  ".join(problems))
        gone, added = definition_changes(call)
        moved: dict[str, int] = {}
        for old, new in sorted(mapping.items()):
            ids = conn.execute(select(Application.id).where(Application.call_id == call_id,
                                                            Application.state == old)
                               .order_by(Application.id)).scalars().all()
            if ids:
                conn.execute(_apps.update().where(_apps.c.call_id == call_id,
                                                  _apps.c.state == old)
                             .values(state=new, version=_apps.c.version + 1))
                audit.record(conn, actor, (audit.Event("migrate", call_id, i, old, new)
                                           for i in ids))
            moved[f"{old}->{new}"] = len(ids)
        config = pinned(call).model_dump(mode="json")
        conn.execute(Call.__table__.update().where(Call.id == call_id).values(config=config))
        audit.record(conn, actor, [audit.Event("call_migrate", call_id, payload={
            "from": call.definition or "(none)", "to": config["definition"], "gone": gone,
            "added": added, "mapping": mapping, "moved": moved})])
        result = Migration(call_id, call.definition, config["definition"], gone, added, moved,
                           dry_run)
        if dry_run:
            savepoint.rollback()
    return result


def pin_unpinned(conn: Connection, actor: str) -> list[str]:
    """Calls stored before definitions were versioned keep the one they run on now (what
    `starfund init` does on an upgraded database); one `call_pin` event each."""
    done = []
    for call_id, config in conn.execute(select(Call.id, Call.config).order_by(Call.id)).all():
        if config.get("definition"):
            continue
        pinned_config = pinned(_validated(json.dumps(config, sort_keys=True, default=str)))
        stored = pinned_config.model_dump(mode="json")
        conn.execute(Call.__table__.update().where(Call.id == call_id).values(config=stored))
        audit.record(conn, actor, [audit.Event("call_pin", call_id, payload={
            "definition": stored["definition"]})])
        done.append(call_id)
    return done
