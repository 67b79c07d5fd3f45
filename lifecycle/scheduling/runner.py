"""The APScheduler runner (`starfund scheduler run`): deadlines fired on time, the outbox drained.

The `Runner` keeps one APScheduler job per pending deadline in a
SQLAlchemyJobStore on the same database. Those jobs are only wake-up calls
(`wake`): whatever wakes it, a pass fires what is due by `clock.now()`
(`lifecycle.scheduling.firing`). All its work (the catch-up at start included)
runs in APScheduler's worker threads; the main thread only waits for
SIGINT/SIGTERM and then stops it: no new firing or delivery batch starts, the
one in hand finishes (a firing commits, or rolls back if its effect fails; a
delivery batch records what it sent), so every deadline is fired or free and
every message claimed is sent, back in the queue or failed, never left `sending`.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, create_engine, select

from lifecycle.core import clock, health
from lifecycle.core.accounts import Actor
from lifecycle.core.models import Deadline
from lifecycle.core.settings import FaultHooks
from lifecycle.engine import anchoring
from lifecycle.scheduling import retention
from lifecycle.scheduling.firing import SCHEDULER_ACTOR, Firing, run_due
from notifications.delivery import drain

_table = Deadline.__table__
log = logging.getLogger("starfund.scheduler")

WAKE_JOB = "lifecycle.scheduling.runner:wake"
"""The job every deadline's APScheduler entry runs, by reference (stored in the job store)."""

# Test hook, read once (costs one string test when unset): with STARFUND_FAULT_PAUSE_IN=sync,
# fire or deliver, a running Runner writes the file STARFUND_FAULT_MARKER the first time it
# reaches that phase (sync: using the job store; fire: a deadline claimed, its transaction
# open; deliver: a batch claimed, nothing sent yet) and waits there until it is told to stop.
_HOOKS = FaultHooks()  # read once, at import (lifecycle.core.settings)
_PAUSE_IN = _HOOKS.fault_pause_in or ""
_PAUSED: set[str] = set()


def _pause(phase: str) -> None:
    runner = _runner
    if phase != _PAUSE_IN or runner is None or phase in _PAUSED:
        return
    _PAUSED.add(phase)
    marker = _HOOKS.fault_marker or f"starfund-paused-{phase}"
    with open(marker, "w", encoding="utf-8") as f:
        f.write(f"{phase} {os.getpid()}\n")
    log.info("test hook: paused in %s until told to stop", phase)
    runner._stopping.wait(60)


def _pause_fire() -> None:
    _pause("fire")


_runner: "Runner | None" = None


def wake(key: str) -> None:
    """The job every deadline's APScheduler entry runs: fire whatever is due now."""
    if _runner is not None:
        log.debug("woken by deadline %s", key)
        _runner.tick()


class SharedJobStore(SQLAlchemyJobStore):
    """A SQLAlchemyJobStore that several workers can share.

    APScheduler 3 assumes one scheduler per job store: a worker removing a job
    another already removed raises JobLookupError and stops its loop. Our jobs
    are idempotent wake-ups (exactly-once lives in the deadline rows), so a job
    already gone is simply gone.
    """

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
    actor: Actor = SCHEDULER_ACTOR
    max_attempts: int = 5
    templates: str | None = None
    backoff: float = 60.0   # seconds before the first retry of a failed firing or delivery; doubles
    batch: int = 50         # messages claimed per delivery batch: the most a stop waits for
    anchor_dir: str | None = None
    """Where to write a signed anchor of the audit trail at start and every `anchor_every`."""
    anchor_every: float = 86400.0
    retention_days: dict[str, int] | None = None
    """The retention periods (`retention.periods`): the day's purge runs at a sync, once a day;
    None: no purge (a runner a test builds for deadlines alone)."""
    outbox: str | None = None
    """The file channel's folder: the purge removes its copies of old messages too."""
    beat_every: float = 30.0
    """Seconds between heartbeats (`lifecycle.core.health`: `/healthz` reads their age)."""
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
        _runner = self
        self.zone = clock.zone()
        url = self.db.url
        self._store_engine = create_engine(
            url, **({"connect_args": {"timeout": 60}} if url.get_backend_name() == "sqlite" else
                    {"pool_pre_ping": True}))
        store = SharedJobStore(engine=self._store_engine, tablename="apscheduler_jobs")
        self.scheduler = BackgroundScheduler(
            timezone=self.zone,
            jobstores={"default": MemoryJobStore(), "deadlines": store},
            executors={"default": ThreadPoolExecutor(1), "outbox": ThreadPoolExecutor(1),
                       "beat": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.heartbeat = health.heartbeat_name()
        log.info("scheduler starting: catching up on missed deadlines")
        self.scheduler.start()
        self.scheduler.add_job(self._catch_up, id="catch-up", jobstore="default")
        if wait:
            self._ready.wait()

    def _catch_up(self) -> None:
        try:
            self.tick(drain=False)
            self.beat(passed=True)
            self.purge()
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
                self.scheduler.add_job(self.beat, "interval", seconds=self.beat_every,
                                       id="beat", jobstore="default", executor="beat")
                if self.anchor_dir:
                    self.scheduler.add_job(self.anchor, "interval", seconds=self.anchor_every,
                                           id="anchor", jobstore="default",
                                           next_run_time=clock.wall().replace(tzinfo=self.zone))
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
        self.beat(stopped=True)
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
                                  retry_base=timedelta(seconds=self.backoff),
                                  on_claim=_pause_fire if _PAUSE_IN else None)
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

    def purge(self) -> None:
        """Today's retention purge, unless it ran already (`retention.run_daily`)."""
        if self.retention_days is None or self._stopping.is_set():
            return
        try:
            done = retention.run_daily(self.db, self.actor, self.retention_days, self.outbox)
            if done is not None:
                log.info("retention purge of %s: %s", done["day"],
                         ", ".join(f"{k} {v}" for k, v in done.items() if k != "day"))
        except Exception:  # noqa: BLE001 - the next sync tries again
            log.exception("retention purge failed; will try again at the next sync")

    def anchor(self) -> None:
        """Sign the audit trail's head into `anchor_dir` and queue it to the auditors."""
        try:
            path, body, queued = anchoring.anchor_now(self.db, self.actor, Path(self.anchor_dir),
                                                      [])
            log.info("anchored event %s in %s (queued to %d)", body["seq"], path, queued)
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.exception("could not anchor the audit trail")

    def beat(self, passed: bool = False, stopped: bool = False) -> None:
        """Write the heartbeat (`passed`: after a pass over the due deadlines)."""
        try:
            health.beat(self.db, self.heartbeat, passed=passed, stopped=stopped)
        except Exception:  # noqa: BLE001 - the database may be away: /healthz then says so
            log.warning("could not write the heartbeat; will try again", exc_info=True)

    def sync(self) -> None:
        """Periodic: fire what is due, add jobs for deadlines written since (e.g. by advances),
        and purge what outlived its retention, once a day."""
        self.tick()
        self.beat(passed=True)
        self.purge()
        try:
            self.sync_jobs()
        except Exception:  # noqa: BLE001
            log.exception("could not sync the deadline jobs; will try again")

    def drain(self) -> None:
        """Deliver the outbox in batches of `batch`; once stopping, no new batch is claimed."""
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
        offset = clock.wall() - clock.now()
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
                self.scheduler.add_job(WAKE_JOB, "date", run_date=wake,
                                       args=[job_id.split(":", 1)[1]], id=job_id,
                                       jobstore="deadlines", replace_existing=True)
        return len(wanted)


def serve(runner: Runner, stop: threading.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly.

    The main thread only waits: all work runs in the scheduler's threads, so a
    signal is acted on at once whatever the runner is doing.
    """
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
