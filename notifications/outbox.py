"""The outbox: enqueue in the firing transaction, drain after commit.

Every row carries a dedupe key, so enqueueing twice (a retried batch, a
scheduler catching up) stores one message, and delivery records the attempt
before sending so a crash between sending and recording never sends twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from lifecycle import clock
from lifecycle.db import insert_ignore
from lifecycle.models import Notification

_table = Notification.__table__


@dataclass
class Message:
    """One message to enqueue."""

    kind: str
    recipient_kind: str
    recipient_id: str
    recipient: str
    language: str
    dedupe_key: str
    context: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None
    application_id: str | None = None


def enqueue(conn: Connection, messages: list[Message], now: datetime | None = None) -> int:
    """Write messages to the outbox in the caller's transaction; duplicates are ignored."""
    now = now or clock.now()
    rows = [{"dedupe_key": m.dedupe_key, "call_id": m.call_id, "application_id": m.application_id,
             "recipient_kind": m.recipient_kind, "recipient_id": m.recipient_id,
             "recipient": m.recipient, "kind": m.kind, "language": m.language,
             "context": m.context, "status": "pending", "attempts": 0, "last_error": "",
             "created_at": now, "next_attempt_at": now} for m in messages]
    insert_ignore(conn, _table, rows, ["dedupe_key"])
    return len(rows)


@dataclass
class DrainReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    errors: list[str] = field(default_factory=list)


def claim(conn: Connection, limit: int, now: datetime, max_attempts: int) -> list[Any]:
    """Pick due pending messages and record the attempt before anything is sent."""
    stmt = (select(_table).where(_table.c.status == "pending", _table.c.next_attempt_at <= now)
            .order_by(_table.c.id).limit(limit))
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    if rows:
        conn.execute(update(_table).where(_table.c.id.in_([r.id for r in rows]))
                     .values(status="sending", attempts=_table.c.attempts + 1))
    return rows


def backoff(attempts: int, base_seconds: int = 60) -> timedelta:
    """Exponential backoff: 1, 2, 4, 8 ... minutes after the n-th failure."""
    return timedelta(seconds=base_seconds * (2 ** max(attempts - 1, 0)))


def drain(db, channel, limit: int = 500, max_attempts: int = 5,
          now: datetime | None = None) -> DrainReport:
    """Deliver due pending messages: claim (commit), send, then record the outcome (commit).

    Claiming marks a message 'sending' before it leaves, so a crash after the
    send leaves it 'sending' (reported, never re-sent automatically) rather
    than pending.
    """
    from lifecycle.db import transaction
    from notifications.channels import build
    from notifications.render import render

    report = DrainReport()
    while True:
        now_ = now or clock.now()
        with transaction(db) as session:
            rows = claim(session.connection(), limit, now_, max_attempts)
        if not rows:
            return report
        outcomes = []
        for r in rows:
            try:
                rendered = render(r.kind, r.language, r.context)
                channel.deliver(build(r.recipient, rendered, r.dedupe_key), r.dedupe_key)
                outcomes.append((r, "sent", ""))
            except Exception as e:  # noqa: BLE001 - any delivery failure is recorded, not raised
                outcomes.append((r, "failed" if r.attempts + 1 >= max_attempts else "pending",
                                 f"{type(e).__name__}: {e}"))
        with transaction(db) as session:
            conn = session.connection()
            for r, status, error in outcomes:
                values: dict[str, Any] = {"status": status, "last_error": error}
                if status == "sent":
                    values["sent_at"] = now_
                    report.sent += 1
                elif status == "failed":
                    report.failed += 1
                    report.errors.append(f"{r.dedupe_key}: {error}")
                else:
                    values["next_attempt_at"] = now_ + backoff(r.attempts + 1)
                    report.retrying += 1
                conn.execute(update(_table).where(_table.c.id == r.id).values(**values))
        if len(rows) < limit or report.retrying:
            if report.retrying and len(rows) == limit:
                continue
            return report
