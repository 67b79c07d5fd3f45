"""Deadlines as rows, fired exactly once; the APScheduler runner derives its jobs from them.

A deadline row says what happens when (call, kind, due time, what it fires).
Entering a state writes the deadlines the state declares (`schedule`), and with
each closing deadline its reminder rows (action "remind"), one per offset of
the call's `[reminders]` settings.

Firing (`fire_next`, `run_due`) is exactly once: one transaction claims the
earliest due row (PostgreSQL: FOR UPDATE SKIP LOCKED, so another worker takes
the next one; SQLite: the write lock), runs its effect in a savepoint (an
advance through the engine as the actor `scheduler`, or the reminders), and
marks it fired with a note and an audit event; it commits all of that or
nothing. A failing effect is rolled back alone and the row records the attempt,
the error and when to retry; it is never marked fired. Rows fire in due order,
and a call's later deadlines wait while an earlier closing deadline of the same
call has not fired.

The `Runner` (`starfund scheduler run`) keeps one APScheduler job per pending
deadline in a SQLAlchemyJobStore on the same database. Those jobs are only
wake-up calls: whatever wakes it, a pass fires what is due by `clock.now()`.
All its work (the catch-up at start included) runs in APScheduler's worker
threads; the main thread only waits for SIGINT/SIGTERM and then stops it: no
new firing or delivery batch starts, the one in hand finishes (a firing
commits, or rolls back if its effect fails; a delivery batch records what it
sent), so every deadline is fired or free and every message claimed is sent,
back in the queue or failed, never left `sending`.
"""
from __future__ import annotations

import logging
import os
import threading
import time as walltime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, or_, select, update

from lifecycle.core import audit, clock
from lifecycle.core.db import insert_ignore
from lifecycle.core.models import Call, Deadline

_table = Deadline.__table__
log = logging.getLogger("starfund.scheduler")

SCHEDULER_ACTOR = "scheduler"
REMIND = "remind"
ADVANCE = "advance"
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)

# Test hook, read once (costs one string test when unset): with STARFUND_FAULT_PAUSE_IN=sync,
# fire or deliver, a running Runner writes the file STARFUND_FAULT_MARKER the first time it
# reaches that phase (sync: using the job store; fire: a deadline claimed, its transaction
# open; deliver: a batch claimed, nothing sent yet) and waits there until it is told to stop.
_PAUSE_IN = os.environ.get("STARFUND_FAULT_PAUSE_IN", "")
_PAUSED: set[str] = set()


def _pause(phase: str) -> None:
    runner = _runner
    if phase != _PAUSE_IN or runner is None or phase in _PAUSED:
        return
    _PAUSED.add(phase)
    marker = os.environ.get("STARFUND_FAULT_MARKER") or f"starfund-paused-{phase}"
    with open(marker, "w", encoding="utf-8") as f:
        f.write(f"{phase} {os.getpid()}\n")
    log.info("test hook: paused in %s until told to stop", phase)
    runner._stopping.wait(60)


@dataclass
class DeadlineRow:
    call_id: str
    kind: str
    due_at: datetime
    fires: str
    action: str = ADVANCE
    application_id: str | None = None
    entry: int = 1
    """Which entry into its state this deadline serves: the n-th (n > 1) gets the key `...#n`
    (see `engine._own_entries`), so a state entered again schedules again."""

    @property
    def key(self) -> str:
        parts = [self.call_id, self.kind] + ([self.application_id] if self.application_id else [])
        return ":".join(parts) + (f"#{self.entry}" if self.entry > 1 else "")


def offset_label(days: float) -> str:
    """A short, unique name for a reminder offset: 7d, 12h, 90m, 30s."""
    seconds = round(days * 86400)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def reminder_rows(main: DeadlineRow, offsets: list[float], now: datetime) -> list[DeadlineRow]:
    """The reminder deadlines of a closing deadline; none once the deadline itself has passed."""
    if main.due_at <= now:
        return []
    return [DeadlineRow(main.call_id, f"{main.kind}:remind:{offset_label(d)}",
                        main.due_at - timedelta(days=d), main.kind, REMIND, main.application_id,
                        main.entry)
            for d in sorted(set(offsets), reverse=True)]


def _reminder_offsets(conn: Connection, call_ids: set[str]) -> dict[str, Any]:
    from lifecycle.core.callconfig import Reminders

    rows = conn.execute(select(Call.id, Call.config).where(Call.id.in_(sorted(call_ids))))
    return {cid: Reminders.model_validate((config or {}).get("reminders") or {})
            for cid, config in rows}


def schedule(conn: Connection, rows: list[DeadlineRow]) -> None:
    """Write deadlines (and their reminders) in the caller's transaction; existing keys stay as they are."""
    if not rows:
        return
    now = clock.now()
    rows = list(rows)
    mains = [r for r in rows if r.action == ADVANCE]
    if mains:
        settings = _reminder_offsets(conn, {r.call_id for r in mains})
        for r in mains:
            offsets = getattr(settings.get(r.call_id), r.kind.split(":")[0], None) or []
            rows.extend(reminder_rows(r, offsets, now))
    insert_ignore(conn, _table, [
        {"key": r.key, "call_id": r.call_id, "application_id": r.application_id, "kind": r.kind,
         "action": r.action, "fires": r.fires, "due_at": r.due_at, "fired_at": None,
         "attempts": 0, "last_error": "", "note": "", "next_attempt_at": None,
         "created_at": now} for r in rows], ["key"])


# --- firing ------------------------------------------------------------------------

@dataclass
class Firing:
    """What one firing attempt did: outcome is fired, skipped (a reminder no longer useful) or failed."""

    key: str
    call_id: str
    kind: str
    action: str
    fires: str
    due_at: datetime
    outcome: str
    note: str
    attempts: int
    retry_at: datetime | None = None
    reminders: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "call": self.call_id, "kind": self.kind, "action": self.action,
                "fires": self.fires, "due_at": self.due_at.isoformat(sep=" "),
                "outcome": self.outcome, "note": self.note, "attempts": self.attempts,
                "retry_at": self.retry_at.isoformat(sep=" ") if self.retry_at else None,
                "reminders": self.reminders}

    def line(self) -> str:
        head = f"{self.outcome} {self.key} (due {self.due_at:%Y-%m-%d %H:%M:%S}"
        head += f", {self.action} {self.fires})"
        if self.outcome == "failed":
            return f"{head}: attempt {self.attempts} failed, retry after {self.retry_at}: {self.note}"
        return f"{head}: {self.note}"


def retry_delay(attempts: int, base: timedelta = RETRY_BASE) -> timedelta:
    """Exponential backoff for a failing deadline: base (1 minute), 2, 4 ... times it, at most 6 hours."""
    return min(base * (2 ** max(attempts - 1, 0)), RETRY_CAP)


def _claim(conn: Connection, now: datetime) -> Any:
    """The earliest due row no other worker holds, and not behind an unfired closing deadline."""
    d, e = _table, _table.alias("earlier")
    blocked = exists().where(
        e.c.call_id == d.c.call_id, e.c.fired_at.is_(None), e.c.action == ADVANCE,
        or_(e.c.due_at < d.c.due_at, and_(e.c.due_at == d.c.due_at, e.c.id < d.c.id)))
    stmt = (select(d).where(d.c.fired_at.is_(None), d.c.due_at <= now,
                            or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
                            ~blocked)
            .order_by(d.c.due_at, d.c.id).limit(1))
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True, of=d)
    return conn.execute(stmt).first()


def _advance(db: Engine, conn: Connection, row: Any) -> tuple[str, str, Any]:
    from lifecycle.core import engine

    try:
        report = engine.advance(db, row.call_id, row.fires, SCHEDULER_ACTOR, joined=conn)
    except engine.NothingToMove as e:
        return "fired", f"nothing to move: {e}", None
    parts = [f"{n} {src}->{dst}" for (src, dst), n in sorted(report.moved.items())]
    parts += [f"{n} skipped: {why}" for why, n in report.skipped.most_common()]
    return "fired", f"moved {report.moved_total}" + (f" ({'; '.join(parts)})" if parts else ""), \
        report


def fire_next(db: Engine, now: datetime | None = None, actor: str = SCHEDULER_ACTOR,
              retry_base: timedelta = RETRY_BASE) -> Firing | None:
    """Claim, fire and mark the next due deadline in one transaction; None when nothing is due.

    A failed effect is retried after `retry_delay(attempts, retry_base)`.
    """
    from lifecycle.scheduling import reminders

    now = now or clock.now()
    report = None
    with db.connect() as conn:
        with conn.begin():
            row = _claim(conn, now)
            if row is None:
                return None
            if _PAUSE_IN:
                _pause("fire")
            attempts = row.attempts + 1
            sent = 0
            savepoint = conn.begin_nested()
            try:
                if row.action == ADVANCE:
                    outcome, note, report = _advance(db, conn, row)
                elif row.action == REMIND:
                    outcome, note, sent = reminders.fire(conn, row, now)
                else:
                    raise ValueError(f"unknown deadline action {row.action!r}")
                savepoint.commit()
            except Exception as e:  # noqa: BLE001 - the effect failed: undo it alone, record why
                if savepoint.is_active:
                    savepoint.rollback()
                report = None
                error = f"{type(e).__name__}: {e}"
                retry_at = now + retry_delay(attempts, retry_base)
                conn.execute(update(_table).where(_table.c.id == row.id).values(
                    attempts=attempts, last_error=error, next_attempt_at=retry_at))
                firing = Firing(row.key, row.call_id, row.kind, row.action, row.fires, row.due_at,
                                "failed", error, attempts, retry_at)
                log.warning("deadline %s", firing.line())
                return firing
            conn.execute(update(_table).where(_table.c.id == row.id).values(
                fired_at=now, attempts=attempts, note=note, next_attempt_at=None))
            audit.record(conn, actor, [audit.Event(
                "deadline_fired" if outcome == "fired" else "reminder_skipped", row.call_id,
                row.application_id, None, None,
                {"deadline": row.key, "kind": row.kind, "action": row.action, "fires": row.fires,
                 "due_at": row.due_at.isoformat(sep=" "), "attempt": attempts, "note": note})],
                at=now)
    if report is not None:
        from lifecycle.core import engine

        engine.committed(report)
    firing = Firing(row.key, row.call_id, row.kind, row.action, row.fires, row.due_at, outcome,
                    note, attempts, reminders=sent)
    log.info("deadline %s", firing.line())
    return firing


def run_due(db: Engine, now: datetime | None = None, actor: str = SCHEDULER_ACTOR,
            limit: int | None = None, stop: Callable[[], bool] | None = None,
            retry_base: timedelta = RETRY_BASE) -> list[Firing]:
    """One pass: fire every deadline due by `now` (default clock.now()), earliest first.

    Each firing is its own transaction, so one failing deadline never blocks the
    others (except later deadlines of the same call, which wait for it). `stop` is
    asked between deadlines (a shutting-down runner finishes the one in hand only).
    """
    now = now or clock.now()
    firings: list[Firing] = []
    while (limit is None or len(firings) < limit) and not (stop and stop()):
        f = fire_next(db, now, actor, retry_base)
        if f is None:
            break
        firings.append(f)
    return firings


def listing(conn: Connection, call_id: str | None = None, pending: bool = False) -> list[dict]:
    """Deadlines for `deadlines list`, due order."""
    stmt = select(_table).order_by(_table.c.due_at, _table.c.id)
    if call_id:
        stmt = stmt.where(_table.c.call_id == call_id)
    if pending:
        stmt = stmt.where(_table.c.fired_at.is_(None))

    def iso(v: datetime | None) -> str | None:
        return v.isoformat(sep=" ") if v else None

    return [{"key": d.key, "call": d.call_id, "kind": d.kind, "due_at": iso(d.due_at),
             "action": d.action, "fires": d.fires, "fired_at": iso(d.fired_at),
             "attempts": d.attempts, "last_error": d.last_error, "note": d.note,
             "retry_at": iso(d.next_attempt_at)} for d in conn.execute(stmt)]


# --- the APScheduler runner ---------------------------------------------------------

_runner: "Runner | None" = None


def _wake(key: str) -> None:
    """The job every deadline's APScheduler entry runs: fire whatever is due now."""
    if _runner is not None:
        log.debug("woken by deadline %s", key)
        _runner.tick()


def _tolerant_store():
    """A SQLAlchemyJobStore that several workers can share.

    APScheduler 3 assumes one scheduler per job store: a worker removing a job
    another already removed raises JobLookupError and stops its loop. Our jobs
    are idempotent wake-ups (exactly-once lives in the deadline rows), so a job
    already gone is simply gone.
    """
    from apscheduler.jobstores.base import JobLookupError
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    class SharedJobStore(SQLAlchemyJobStore):
        def update_job(self, job):  # type: ignore[no-untyped-def]
            try:
                super().update_job(job)
            except JobLookupError:
                pass

        def remove_job(self, job_id):  # type: ignore[no-untyped-def]
            try:
                super().remove_job(job_id)
            except JobLookupError:
                pass

    return SharedJobStore



class _PausingChannel:
    """The test hook's channel: pauses before the first message of a claimed batch."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def deliver(self, msg: Any, dedupe_key: str) -> None:
        _pause("deliver")
        self._channel.deliver(msg, dedupe_key)


@dataclass
class Runner:
    """`starfund scheduler run`: catch up, then fire deadlines on time and drain the outbox.

    Stopping takes seconds in every phase. APScheduler's `shutdown(wait=True)`
    holds the scheduler's job-store lock while it waits for the running jobs, so
    a job that then used the job store (syncing the deadline jobs, queueing a
    drain) would wait for ever. Our jobs touch the job store only inside
    `_scheduling()`, which declines once stopping; `stop` sets stopping and then
    passes through the same lock before shutting down, so no job in hand needs
    the job store any more: it finishes its firing or delivery batch and ends.
    """

    db: Engine
    channel_factory: Callable[[], Any]
    sync_every: float = 30.0
    drain_every: float = 5.0
    actor: str = SCHEDULER_ACTOR
    max_attempts: int = 5
    templates: str | None = None
    backoff: float = 60.0   # seconds before the first retry of a failed firing or delivery; doubles
    batch: int = 50         # messages claimed per delivery batch: the most a stop waits for
    fired: list[Firing] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _jobs_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self, wait: bool = True) -> None:
        """Start APScheduler with the catch-up as its first job (fire what was missed, deliver,
        rebuild the deadline jobs, then run every --sync-every/--drain-every seconds).

        `wait` returns once the catch-up is done; `serve` does not wait, so that a
        signal during the catch-up is handled like one at any other time.
        """
        global _runner
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
        from sqlalchemy import create_engine

        _runner = self
        self.zone = clock._zone()
        url = self.db.url
        self._store_engine = create_engine(
            url, **({"connect_args": {"timeout": 60}} if url.get_backend_name() == "sqlite" else
                    {"pool_pre_ping": True}))
        store = _tolerant_store()(engine=self._store_engine, tablename="apscheduler_jobs")
        self.scheduler = BackgroundScheduler(
            timezone=self.zone,
            jobstores={"default": MemoryJobStore(), "deadlines": store},
            executors={"default": ThreadPoolExecutor(1), "outbox": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        log.info("scheduler starting: catching up on missed deadlines")
        self.scheduler.start()
        self.scheduler.add_job(self._catch_up, id="catch-up", jobstore="default")
        if wait:
            self._ready.wait()

    def _catch_up(self) -> None:
        try:
            self.tick(drain=False)
            self.drain()
            try:
                n = self.sync_jobs()
            except Exception:  # noqa: BLE001 - the periodic sync tries again
                log.exception("could not rebuild the deadline jobs; will try again at the next sync")
                n = -1
            with self._scheduling() as ok:
                if not ok:
                    return
                self.scheduler.add_job(self.sync, "interval", seconds=self.sync_every, id="sync",
                                       jobstore="default")
                self.scheduler.add_job(self.drain, "interval", seconds=self.drain_every,
                                       id="drain", jobstore="default", executor="outbox")
            if n is not None and n >= 0:
                log.info("scheduler running: %d deadline job(s) rebuilt from the deadline rows", n)
            else:
                log.info("scheduler running")
        finally:
            self._ready.set()

    def stop(self) -> None:
        """Take no new work, let the firing or delivery batch in hand finish, close."""
        global _runner
        self._stopping.set()
        with self._jobs_lock:  # a job using the job store is done with it; none will start again
            pass
        self.scheduler.shutdown(wait=True)
        self._store_engine.dispose()
        self._ready.set()
        _runner = None
        log.info("scheduler stopped cleanly")

    @contextmanager
    def _scheduling(self) -> Iterator[bool]:
        """Hold while a job uses the job store; yields False once stopping (leave it alone then)."""
        with self._jobs_lock:
            yield not self._stopping.is_set() and getattr(self, "scheduler", None) is not None

    # --- the work ---
    def tick(self, drain: bool = True) -> list[Firing]:
        """Fire everything due by clock.now(); then wake the outbox sender if mail was queued."""
        with self._lock:
            try:
                firings = run_due(self.db, clock.now(), self.actor, stop=self._stopping.is_set,
                                  retry_base=timedelta(seconds=self.backoff))
            except Exception:  # noqa: BLE001 - keep the scheduler alive; log and try next time
                log.exception("deadline pass failed; will try again at the next sync")
                return []
        self.fired = (self.fired + firings)[-1000:]
        if drain and firings:
            with self._scheduling() as ok:
                if ok:
                    try:  # a one-off job without a trigger runs at once, on the outbox thread
                        self.scheduler.add_job(self.drain, id="drain-now", jobstore="default",
                                               executor="outbox", replace_existing=True)
                    except Exception:  # noqa: BLE001 - the sender runs on its interval anyway
                        pass
        return firings

    def sync(self) -> None:
        """Periodic: fire what is due, and add jobs for deadlines written since (e.g. by advances)."""
        self.tick()
        try:
            self.sync_jobs()
        except Exception:  # noqa: BLE001
            log.exception("could not sync the deadline jobs; will try again")

    def drain(self) -> None:
        """Deliver the outbox in batches of `batch`; once stopping, no new batch is claimed."""
        from notifications.outbox import drain

        if self._stopping.is_set():
            return
        try:
            channel = self.channel_factory()
            if _PAUSE_IN == "deliver":
                channel = _PausingChannel(channel)
            r = drain(self.db, channel, limit=self.batch, max_attempts=self.max_attempts,
                      backoff_seconds=self.backoff, actor=self.actor, templates=self.templates,
                      stop=self._stopping.is_set)
        except Exception:  # noqa: BLE001
            log.exception("outbox delivery failed; will try again")
            return
        in_doubt, deferred = getattr(r, "in_doubt", 0), getattr(r, "deferred", 0)
        if r.sent or r.failed or r.retrying or r.resolved or in_doubt or deferred:
            extra = f", {in_doubt} in doubt, {deferred} deferred" if in_doubt or deferred else ""
            log.info("notifications: %d sent, %d to retry, %d failed, %d resolved after a crash%s",
                     r.sent, r.retrying, r.failed, r.resolved, extra)

    def _wall(self, programme_time: datetime) -> datetime:
        """When the wall clock reaches a programme time (the same unless the clock is simulated)."""
        wall_now = datetime.fromtimestamp(walltime.time(), self.zone)
        offset = wall_now.replace(tzinfo=None) - clock.now()
        if abs(offset) < timedelta(seconds=2):
            offset = timedelta(0)
        return (programme_time + offset).replace(tzinfo=self.zone)

    def sync_jobs(self) -> int | None:
        """Make the job store hold exactly one wake-up per pending deadline still in the future.

        Returns how many; None once stopping (the job store is then left alone).
        """
        now = clock.now()
        with self.db.connect() as conn:
            rows = conn.execute(select(_table.c.key, _table.c.due_at, _table.c.next_attempt_at)
                                .where(_table.c.fired_at.is_(None))).all()
        wanted: dict[str, datetime] = {}
        for key, due_at, retry_at in rows:
            wake = max(due_at, retry_at) if retry_at else due_at
            if wake > now:
                wanted[f"deadline:{key}"] = self._wall(wake)
        with self._scheduling() as ok:
            if not ok:
                return None
            if _PAUSE_IN:
                _pause("sync")
            have = {job.id: job for job in self.scheduler.get_jobs(jobstore="deadlines")}
            for job_id in set(have) - set(wanted):
                self.scheduler.remove_job(job_id, jobstore="deadlines")
            for job_id, wake in wanted.items():
                job = have.get(job_id)
                if job is not None and job.next_run_time == wake:
                    continue
                self.scheduler.add_job("lifecycle.scheduling.scheduler:_wake", "date", run_date=wake,
                                       args=[job_id.split(":", 1)[1]], id=job_id,
                                       jobstore="deadlines", replace_existing=True)
        return len(wanted)


def serve(runner: Runner, stop: threading.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly.

    The main thread only waits: all work runs in the scheduler's threads, so a
    signal is acted on at once whatever the runner is doing.
    """
    import signal

    stop = stop or threading.Event()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, _frame: (
            log.info("received %s: shutting down", signal.Signals(signum).name), stop.set(),
            runner._stopping.set()))
    try:
        runner.start(wait=False)
        while not stop.wait(0.5):
            pass
    finally:
        if getattr(runner, "scheduler", None) is not None and runner.scheduler.running:
            runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
