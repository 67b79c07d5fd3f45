"""Firing deadline rows exactly once (the rows themselves: `lifecycle.core.deadlines`).

Firing (`fire_next`, `run_due`) is exactly once: one transaction claims the
earliest due row (PostgreSQL: FOR UPDATE SKIP LOCKED, so another worker takes
the next one; SQLite: the write lock), runs its effect in a savepoint (an
advance through the engine as the actor `scheduler`, or the reminders), and
marks it fired with a note and an audit event; it commits all of that or
nothing. A failing effect is rolled back alone and the row records the attempt,
the error and when to retry; it is never marked fired. Rows fire in due order,
and a call's later deadlines wait while an earlier closing deadline of the same
call has not fired.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, or_, select, update

from lifecycle.core import accounts, audit, clock, retry
from lifecycle.core.accounts import Actor
from lifecycle.core.deadlines import ADVANCE, REMIND
from lifecycle.core.models import Deadline
from lifecycle.core.progress import SILENT, Progress
from lifecycle.engine import engine
from lifecycle.scheduling import reminders

_table = Deadline.__table__
log = logging.getLogger("starfund.scheduler")

SCHEDULER_ACTOR = accounts.system()
"""The identity deadlines fire under (with `by`, the account that runs the scheduler)."""
RETRY_BASE = retry.DEADLINES.base


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


def claim(conn: Connection, now: datetime) -> Any:
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


def _advance(conn: Connection, row: Any, actor: Actor = SCHEDULER_ACTOR,
             progress: Progress = SILENT) -> tuple[str, str]:
    """Fire the row's trigger as the scheduler, in the firing's transaction."""
    try:
        report = engine.advance(conn, row.call_id, row.fires, actor, progress=progress)
    except engine.NothingToMove as e:
        return "fired", f"nothing to move: {e}"
    parts = [f"{n} {src}->{dst}" for (src, dst), n in sorted(report.moved.items())]
    parts += [f"{n} skipped: {why}" for why, n in report.skipped.most_common()]
    return "fired", f"moved {report.moved_total}" + (f" ({'; '.join(parts)})" if parts else "")


def fire_next(db: Engine, now: datetime | None = None, actor: Actor = SCHEDULER_ACTOR,
              retry_base: timedelta = RETRY_BASE,
              on_claim: Callable[[], None] | None = None,
              progress: Progress = SILENT) -> Firing | None:
    """Claim, fire and mark the next due deadline in one transaction; None when nothing is due.

    A failed effect is retried by `retry.DEADLINES` (first after `retry_base`). `on_claim`
    runs once a row is claimed, its transaction open (the runner's test hook). A closing
    deadline's advance reports to `progress`.
    """
    now = now or clock.now()
    with db.connect() as conn:
        with conn.begin():
            row = claim(conn, now)
            if row is None:
                return None
            if on_claim is not None:
                on_claim()
            attempts = row.attempts + 1
            sent = 0
            savepoint = conn.begin_nested()
            try:
                if row.action == ADVANCE:
                    outcome, note = _advance(conn, row, actor, progress)
                elif row.action == REMIND:
                    outcome, note, sent = reminders.fire(conn, row, now)
                else:
                    raise ValueError(f"unknown deadline action {row.action!r}")
                savepoint.commit()
            except Exception as e:  # noqa: BLE001 - the effect failed: undo it alone, record why
                if savepoint.is_active:
                    savepoint.rollback()
                error = f"{type(e).__name__}: {e}"
                policy = retry.DEADLINES.with_base(retry_base.total_seconds())
                retry_at = policy.next_at(now, attempts)
                conn.execute(update(_table).where(_table.c.id == row.id).values(
                    attempts=attempts, last_error=error, next_attempt_at=retry_at))
                firing = Firing(row.key, row.call_id, row.kind, row.action, row.fires, row.due_at,
                                "failed", error, attempts, retry_at)
                log.warning("deadline %s", firing.line())
                return firing
            conn.execute(update(_table).where(_table.c.id == row.id).values(
                fired_at=now, attempts=attempts, note=note, next_attempt_at=None,
                outcome=outcome))
            audit.record(conn, actor, [audit.Event(
                "deadline_fired" if outcome == "fired" else "reminder_skipped", row.call_id,
                row.application_id, None, None,
                {"deadline": row.key, "kind": row.kind, "action": row.action, "fires": row.fires,
                 "due_at": row.due_at.isoformat(sep=" "), "attempt": attempts, "note": note})],
                at=now)
    firing = Firing(row.key, row.call_id, row.kind, row.action, row.fires, row.due_at, outcome,
                    note, attempts, reminders=sent)
    log.info("deadline %s", firing.line())
    return firing


def run_due(db: Engine, now: datetime | None = None, actor: Actor = SCHEDULER_ACTOR,
            limit: int | None = None, stop: Callable[[], bool] | None = None,
            retry_base: timedelta = RETRY_BASE,
            on_claim: Callable[[], None] | None = None,
            progress: Progress = SILENT) -> list[Firing]:
    """One pass: fire every deadline due by `now` (default clock.now()), earliest first.

    Each firing is its own transaction, so one failing deadline never blocks the
    others (except later deadlines of the same call, which wait for it). `stop` is
    asked between deadlines (a shutting-down runner finishes the one in hand only).
    """
    now = now or clock.now()
    firings: list[Firing] = []
    while (limit is None or len(firings) < limit) and not (stop and stop()):
        f = fire_next(db, now, actor, retry_base, on_claim, progress)
        if f is None:
            break
        firings.append(f)
    return firings
