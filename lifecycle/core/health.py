"""Is this starfund well? The checks behind the portal's `/healthz`, and the scheduler's heartbeat.

`check` answers, cheaply (a handful of indexed reads, one small file read): the database
answers, its schema is this release's, the chain key is readable by this process (every
write needs it), a scheduler ran recently (its heartbeat), and no message failed or sat held
too long. Each part says whether it is wrong; one wrong part makes the whole wrong (503).
The scheduler writes its heartbeat at each pass (`beat`); times are the wall clock's, never
a simulation's.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lifecycle.core import clock, db, keys, meta
from lifecycle.core.errors import UserError
from lifecycle.core.models import Heartbeat, Notification

HELD, FAILED = "held", "failed"


@dataclass(frozen=True)
class Limits:
    """When a part counts as wrong (settings `health_*`)."""

    scheduler_age: float = 180.0
    """Seconds since a scheduler's last heartbeat; 0: no scheduler is watched."""
    failed: int = 0
    """Failed messages tolerated."""
    held_hours: float = 72.0
    """Hours a message may wait held for review."""


@dataclass
class Health:
    ok: bool
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "wrong", **self.parts}


def check(engine: Engine, limits: Limits = Limits()) -> Health:
    """Every part of the health check (see the module docstring)."""
    started = time.perf_counter()
    parts: dict[str, dict[str, Any]] = {}
    now = clock.wall()
    gone = db.is_sqlite(engine) and engine.url.database not in (None, "", ":memory:") \
        and not os.path.exists(engine.url.database)
    try:
        if gone:  # connecting would make a new, empty file
            raise FileNotFoundError(f"the database file {engine.url.database} is gone")
        with db.reading(engine) as conn:
            parts["database"] = {"ok": True}
            at, need, same = db.schema_state(conn)
            parts["schema"] = {"ok": same, "revision": at, "needs": need}
            if same:
                parts["chain_key"] = _chain_key(conn)
                parts["scheduler"] = _scheduler(conn, now, limits)
                parts["messages"] = _messages(conn, now, limits)
    except (SQLAlchemyError, OSError) as e:
        parts["database"] = {"ok": False, "error": _first_line(e)}
    parts["took_ms"] = {"ok": True, "value": round((time.perf_counter() - started) * 1000, 2)}
    ok = all(p.get("ok", True) for p in parts.values()) and "chain_key" in parts
    return Health(ok, parts)


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _chain_key(conn: Connection) -> dict[str, Any]:
    try:
        keys.load_chain_key(meta.database_id(conn))
        return {"ok": True}
    except (UserError, OSError) as e:
        return {"ok": False, "error": str(e)}


def _scheduler(conn: Connection, now: datetime, limits: Limits) -> dict[str, Any]:
    last = conn.execute(select(func.max(Heartbeat.beat_at))
                        .where(Heartbeat.stopped_at.is_(None))).scalar()
    age = (now - last).total_seconds() if last is not None else None
    watched = limits.scheduler_age > 0
    ok = not watched or (age is not None and age <= limits.scheduler_age)
    out: dict[str, Any] = {"ok": ok, "heartbeat_age_s": None if age is None else round(age, 1)}
    if not watched:
        out["watched"] = False
    elif age is None:
        out["error"] = "no scheduler is running (`starfund scheduler run`)"
    elif not ok:
        out["error"] = f"no heartbeat for {age:.0f} s (limit {limits.scheduler_age:g} s)"
    return out


def _messages(conn: Connection, now: datetime, limits: Limits) -> dict[str, Any]:
    rows = dict(conn.execute(select(Notification.status, func.count())
                             .where(Notification.status.in_((FAILED, HELD)))
                             .group_by(Notification.status)).all())
    failed, held = rows.get(FAILED, 0), rows.get(HELD, 0)
    oldest = conn.execute(select(func.min(Notification.created_at))
                          .where(Notification.status == HELD)).scalar() if held else None
    # queued at the programme's time, which a simulation moves: compared with its own now
    held_hours = (clock.now() - oldest).total_seconds() / 3600 if oldest else 0.0
    out: dict[str, Any] = {"ok": failed <= limits.failed and held_hours <= limits.held_hours,
                           "failed": failed, "held": held,
                           "oldest_held_hours": round(held_hours, 1)}
    if failed > limits.failed:
        out["error"] = f"{failed} message(s) failed (`starfund notify list --status failed`)"
    elif held_hours > limits.held_hours:
        out["error"] = (f"a held message has waited {held_hours:.0f} h for review "
                        "(`starfund notify outbox`)")
    return out


# --- the scheduler's heartbeat ---------------------------------------------------------------

def heartbeat_name() -> str:
    return f"scheduler:{socket.gethostname()[:150]}:{os.getpid()}"


def beat(engine: Engine, name: str, passed: bool = False, stopped: bool = False) -> None:
    """Write this scheduler's heartbeat (`passed`: a pass over the due deadlines just ended;
    `stopped`: it stops cleanly). Rows of schedulers silent for a week are dropped."""
    now = clock.wall()
    values: dict[str, Any] = {"beat_at": now}
    if passed:
        values["last_pass_at"] = now
    if stopped:
        values["stopped_at"] = now
    with engine.begin() as conn:
        done = conn.execute(update(Heartbeat).where(Heartbeat.name == name).values(**values))
        if done.rowcount == 0:
            host, _, pid = name.removeprefix("scheduler:").rpartition(":")
            conn.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - timedelta(days=7)))
            conn.execute(insert(Heartbeat).values(
                name=name, host=host, pid=int(pid) if pid.isdigit() else 0, started_at=now,
                **{"last_pass_at": None, "stopped_at": None, **values}))


def last_run(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """(the latest heartbeat of a running scheduler, the end of the latest pass of any)."""
    row = conn.execute(select(func.max(Heartbeat.beat_at).filter(Heartbeat.stopped_at.is_(None)),
                              func.max(Heartbeat.last_pass_at))).first()
    return (row[0], row[1]) if row else (None, None)
