"""Deadlines as rows: what a state entered schedules, its reminders, and the listing.

A deadline row says what happens when (call, kind, due time, what it fires).
Entering a state writes the deadlines the state declares (`entry_rows`, kept to
the ones the entry still needs by `own_entries`, written by `schedule`), and
with each closing deadline its reminder rows (action "remind"), one per offset
of the call's `[reminders]` settings. Firing them is `lifecycle.scheduling.firing`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core import clock
from lifecycle.core.bulk import insert_ignore
from lifecycle.core.callconfig import CallConfig, Reminders
from lifecycle.core.models import Call, Deadline

_table = Deadline.__table__

REMIND = "remind"
ADVANCE = "advance"


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
    (see `own_entries`), so a state entered again schedules again."""

    @property
    def key(self) -> str:
        parts = [self.call_id, self.kind] + ([self.application_id] if self.application_id else [])
        return ":".join(parts) + (f"#{self.entry}" if self.entry > 1 else "")


def entry_rows(call: CallConfig, state: Any, app: Any, extra: dict,
               now: datetime) -> list[DeadlineRow]:
    """The deadlines `state` schedules for `app` entering it now, one per Schedule record.

    `extra` holds the values the move computed (e.g. the checkpoint entered), which
    win over the application's loaded values.
    """
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


def own_entries(conn: Connection, wanted: list[DeadlineRow]) -> list[DeadlineRow]:
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
    d = _table
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


def reminder_offsets(conn: Connection, call_ids: set[str]) -> dict[str, Reminders]:
    """Each call's `[reminders]` settings (days before each deadline kind)."""
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
        settings = reminder_offsets(conn, {r.call_id for r in mains})
        for r in mains:
            offsets = getattr(settings.get(r.call_id), r.kind.split(":")[0], None) or []
            rows.extend(reminder_rows(r, offsets, now))
    insert_ignore(conn, _table, [
        {"key": r.key, "call_id": r.call_id, "application_id": r.application_id, "kind": r.kind,
         "action": r.action, "fires": r.fires, "due_at": r.due_at, "fired_at": None,
         "attempts": 0, "last_error": "", "note": "", "next_attempt_at": None,
         "created_at": now} for r in rows], ["key"])


def standing(fired_at: datetime | None, outcome: str, due_at: datetime, now: datetime) -> str:
    """Where a deadline stands: fired, skipped (a reminder no longer useful), overdue (due,
    not yet fired: the scheduler is behind, or its firing fails) or upcoming."""
    if fired_at is not None:
        return outcome or "fired"
    return "overdue" if due_at <= now else "upcoming"


def listing(conn: Connection, call_id: str | None = None, pending: bool = False,
            now: datetime | None = None) -> list[dict]:
    """Deadlines for `deadlines list` and `status`, due order, each with where it stands."""
    now = now or clock.now()
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
             "retry_at": iso(d.next_attempt_at),
             "standing": standing(d.fired_at, d.outcome, d.due_at, now)}
            for d in conn.execute(stmt)]


def zone_label(now: datetime | None = None) -> str:
    """The programme's zone as people read it: `Asia/Shanghai (UTC+08:00)`."""
    at = (now or clock.now()).replace(tzinfo=clock.zone())
    offset = at.strftime("%z")
    return f"{clock.zone().key} (UTC{offset[:3]}:{offset[3:]})"
