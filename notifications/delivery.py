"""Delivering the outbox after commit, never twice (queueing is `notifications.queue`).

Delivery (`drain`) goes:

1. claim: due pending rows are marked `sending` and their attempt counted, and
   that is committed *before* anything is sent (PostgreSQL: FOR UPDATE SKIP
   LOCKED, so several senders share the work);
2. send, with the dedupe key as Message-ID;
3. record: `sent`, or back to `pending` with exponential backoff, or `failed`
   after `max_attempts` (or at once for a permanent error such as a broken
   template or a rejected address), with an audit event
   `notification_sent`/`notification_failed` in the same transaction.

When the channel says the server itself failed (`DeliveryError` with
`ends_round`: it cannot be reached, or stopped answering), the round ends: the
message in hand is recorded as above, and the rest of the claimed batch is
*deferred*, put back to `pending` exactly as it was (its attempt not counted,
its due time unchanged) for the next round. A hung server costs one timeout
per round, not one per message. When our own side fails (`LocalError`: the
outbox folder full, missing or closed to us) the message in hand is deferred
too: only the receiving side's answers count as attempts, so a full local disk
never uses up a message's attempts.

A sender that crashes between 2 and 3 leaves the row `sending`; once its lease
has run out the row is "in doubt". The file channel can tell whether the
message went out (the .eml exists) and settles it; for SMTP it stays in doubt,
listed by `notify list --in-doubt`, until an administrator re-queues it with
`notify retry --in-doubt`. Nothing is ever re-sent automatically. A channel
can also put a message in doubt at once (`DeliveryError` with `in_doubt`: the
SMTP server went silent or dropped the connection after the message's text was
written, before it answered): the row stays `sending` with its lease ended, so
it is listed in doubt straight away. A re-queued message keeps its Message-ID,
so a receiver that gets it twice can drop the copy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from lifecycle.core import audit, clock, retry
from lifecycle.core.db import transaction
from lifecycle.core.errors import NotFound
from lifecycle.core.models import Notification
from lifecycle.core.progress import SILENT, Progress
from notifications.channels import (
    DEFAULT_SENDER,
    DeliveryError,
    LocalError,
    PermanentError,
    build,
)
from notifications.queue import HELD
from notifications.render import Attachment, Letterhead, Rendered, render

_table = Notification.__table__
LEASE = timedelta(minutes=10)

Attacher = Callable[[Engine, Any, dict], list[Attachment]]
ATTACHERS: dict[str, Attacher] = {}
"""Message kind -> what it carries attached (e.g. review_assigned: the expert's score sheet),
registered by the act that makes it (lifecycle.acts.scoresheets). Called at delivery with
the database, the outbox row and a dict it may cache in for the round."""


Linker = Callable[[Engine, Any, Letterhead], dict[str, Any]]
LINKERS: dict[str, Linker] = {}
"""Message kind -> what its context gains at delivery, made then and never stored (an
invitation's single-use link: `lifecycle.acts.users`)."""


def letter(db: Engine, row: Any, templates: str | None, letterhead: Letterhead,
           cache: dict | None = None) -> Rendered:
    """The message an outbox row sends: the administrator's edit, else its template; with
    its attachments, and what its kind adds at delivery (LINKERS)."""
    linker = LINKERS.get(row.kind)
    late = linker(db, row, letterhead) if linker is not None else {}
    if row.edited:
        out = Rendered(row.edited["subject"], row.edited["body"].rstrip() + "\n"
                       + (f"\n{late['link']}\n" if late.get("link") else ""))
    else:
        out = render(row.kind, row.language, {**row.context, **late}, templates, letterhead)
    attacher = ATTACHERS.get(row.kind)
    if attacher is not None:
        out.attachments = attacher(db, row, {} if cache is None else cache)
    return out


@dataclass
class DrainReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    resolved: int = 0
    in_doubt: int = 0   # may have arrived: left for an administrator (notify list --in-doubt)
    deferred: int = 0   # not tried, the server having failed in this round: queued as they were
    local: str = ""     # why our own side could not deliver (the round's messages deferred)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed,
                "resolved": self.resolved, "in_doubt": self.in_doubt, "deferred": self.deferred,
                "local": self.local, "errors": self.errors}


def claim(conn: Connection, limit: int, now: datetime, lease: timedelta = LEASE) -> list[Any]:
    """Pick due pending messages and record the attempt (status sending) before anything is sent."""
    stmt = (select(_table).where(_table.c.status == "pending", _table.c.next_attempt_at <= now)
            .order_by(_table.c.id).limit(limit))
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    if rows:
        conn.execute(update(_table).where(_table.c.id.in_([r.id for r in rows]))
                     .values(status="sending", attempts=_table.c.attempts + 1,
                             next_attempt_at=now + lease))
    return rows


def due(db: Engine, now: datetime) -> int:
    """How many pending messages are due now (what a drain has to do, for a progress bar)."""
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(_table).where(
            _table.c.status == "pending", _table.c.next_attempt_at <= now)).scalar_one()


def _events(rows: list[tuple[Any, str, str]]) -> list[Any]:
    return [audit.Event(f"notification_{status}", r.call_id, r.application_id, None, None,
                        {"notification": r.id, "kind": r.kind, "to": r.recipient_kind,
                         "recipient": r.recipient_id, "language": r.language,
                         "dedupe_key": r.dedupe_key, "attempt": r.attempts + 1,
                         **({"error": error} if error else {})})
            for r, status, error in rows if status in ("sent", "failed")]


def _record(conn: Connection, outcomes: list[tuple[Any, str, str]], now: datetime, actor: str,
            backoff_seconds: float) -> None:
    """Write all outcomes of a batch with one statement per kind of outcome, plus their audit events.

    Outcomes: sent, failed, pending (retry with backoff), in_doubt (stays
    `sending`, its lease ended now) and deferred (back to pending as claimed).
    """
    sent = [{"b_id": r.id, "b_now": now} for r, s, _ in outcomes if s == "sent"]
    failed = [{"b_id": r.id, "b_err": e} for r, s, e in outcomes if s == "failed"]
    policy = retry.OUTBOX.with_base(backoff_seconds)
    again = [{"b_id": r.id, "b_err": e, "b_next": policy.next_at(now, r.attempts + 1)}
             for r, s, e in outcomes if s == "pending"]
    doubt = [{"b_id": r.id, "b_err": e, "b_next": now} for r, s, e in outcomes if s == "in_doubt"]
    deferred = [{"b_id": r.id, "b_att": r.attempts, "b_next": r.next_attempt_at}
                for r, s, _ in outcomes if s == "deferred"]
    where = (_table.c.id == bindparam("b_id")) & (_table.c.status == "sending")
    if sent:
        conn.execute(update(_table).where(where).values(status="sent", sent_at=bindparam("b_now"),
                                                        last_error=""), sent)
    if failed:
        conn.execute(update(_table).where(where).values(status="failed",
                                                        last_error=bindparam("b_err")), failed)
    if again:
        conn.execute(update(_table).where(where).values(
            status="pending", last_error=bindparam("b_err"),
            next_attempt_at=bindparam("b_next")), again)
    if doubt:
        conn.execute(update(_table).where(where).values(
            last_error=bindparam("b_err"), next_attempt_at=bindparam("b_next")), doubt)
    if deferred:
        conn.execute(update(_table).where(where).values(
            status="pending", attempts=bindparam("b_att"), next_attempt_at=bindparam("b_next")),
            deferred)
    audit.record(conn, actor, _events(outcomes), at=now)


def resolve_in_doubt(db: Engine, channel: Any, now: datetime, actor: str = "outbox") -> int:
    """Settle `sending` rows whose sender vanished, when the channel can tell what happened."""
    delivered = getattr(channel, "delivered", None)
    if delivered is None:
        return 0
    with transaction(db) as session:
        conn = session.connection()
        stmt = select(_table).where(_table.c.status == "sending", _table.c.next_attempt_at <= now)
        if conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = conn.execute(stmt).all()
        outcomes, requeue = [], []
        for r in rows:
            known = delivered(r.dedupe_key)
            if known is True:
                outcomes.append((_Attempted(r), "sent", ""))
            elif known is False:
                requeue.append({"b_id": r.id, "b_now": now})
        if outcomes:
            _record(conn, outcomes, now, actor, 60)
        if requeue:
            conn.execute(update(_table).where(_table.c.id == bindparam("b_id"),
                                              _table.c.status == "sending")
                         .values(status="pending", next_attempt_at=bindparam("b_now"),
                                 last_error="sender stopped before sending; re-queued"), requeue)
    return len(outcomes) + len(requeue)


class _Attempted:
    """A claimed row seen with its attempt already counted (as `_record` expects before +1)."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row.attempts - 1 if name == "attempts" else getattr(self._row, name)


def drain(db: Engine, channel: Any, limit: int = 200, max_attempts: int = 5,
          now: datetime | None = None, backoff_seconds: float = 60, lease: timedelta = LEASE,
          actor: str = "outbox", templates: str | None = None,
          stop: Callable[[], bool] | None = None, progress: Progress = SILENT) -> DrainReport:
    """Deliver every due pending message: claim (commit), send, record the outcome (commit).

    `stop` is asked between batches, so a shutting-down scheduler finishes the batch in hand.
    A `DeliveryError` with `ends_round` ends the round: the rest of the batch is
    deferred (back to pending as it was claimed) and no further batch is claimed.
    `progress` is told each message delivered or not ("sending", of those due at the start).
    """
    report = DrainReport()
    sender = getattr(channel, "sender", DEFAULT_SENDER)
    head = sender if isinstance(sender, Letterhead) else Letterhead(address=sender)
    cache: dict = {}
    report.resolved = resolve_in_doubt(db, channel, now or clock.now(), actor)
    opened = getattr(channel, "open", None)
    if opened:
        opened()
    progress.step("sending", total=lambda: due(db, now or clock.now()))
    try:
        while not (stop and stop()):
            now_ = now or clock.now()
            with transaction(db) as session:
                rows = claim(session.connection(), limit, now_, lease)
            if not rows:
                return report
            outcomes: list[tuple[Any, str, str]] = []
            round_over = False
            for i, r in enumerate(rows):
                progress.advance(1)
                try:
                    try:
                        rendered = letter(db, r, templates, head, cache)
                    except Exception as e:  # noqa: BLE001 - a broken template will not heal itself
                        raise PermanentError(f"template {r.language}/{r.kind}: "
                                             f"{type(e).__name__}: {e}") from e
                    channel.deliver(build(r.recipient, rendered, r.dedupe_key, head), r.dedupe_key)
                    outcomes.append((r, "sent", ""))
                    report.sent += 1
                except LocalError as e:  # our side, not the receiver: no attempt is charged
                    rest = rows[i:]
                    outcomes += [(d, "deferred", "") for d in rest]
                    report.deferred += len(rest)
                    report.local = str(e)
                    round_over = True
                    break
                except Exception as e:  # noqa: BLE001 - any delivery failure is recorded, not raised
                    judged = isinstance(e, (PermanentError, DeliveryError))
                    error = str(e) if judged else f"{type(e).__name__}: {e}"
                    final = isinstance(e, PermanentError) or r.attempts + 1 >= max_attempts
                    if isinstance(e, DeliveryError) and e.in_doubt:
                        outcomes.append((r, "in_doubt", f"in doubt: {error}"))
                        report.in_doubt += 1
                    else:
                        outcomes.append((r, "failed" if final else "pending", error))
                        if final:
                            report.failed += 1
                            report.errors.append(f"{r.dedupe_key}: {error}")
                        else:
                            report.retrying += 1
                    if isinstance(e, DeliveryError) and e.ends_round:
                        rest = rows[i + 1:]
                        outcomes += [(d, "deferred", "") for d in rest]
                        report.deferred += len(rest)
                        round_over = True
                        break
            with transaction(db) as session:
                _record(session.connection(), outcomes, now_, actor, backoff_seconds)
            if round_over:
                return report
        return report
    finally:
        closer = getattr(channel, "close", None)
        if closer:
            closer()


# --- queries and administrative acts --------------------------------------------------

def listing(conn: Connection, status: str | None = None, call_id: str | None = None,
            application_id: str | None = None, in_doubt: bool = False, limit: int | None = 200,
            now: datetime | None = None) -> list[dict[str, Any]]:
    """Outbox rows for `notify list`; `in_doubt` = sending whose sender's lease ran out."""
    t = _table
    stmt = select(t).order_by(t.c.id)
    if in_doubt:
        stmt = stmt.where(t.c.status == "sending", t.c.next_attempt_at <= (now or clock.now()))
    elif status:
        stmt = stmt.where(t.c.status == status)
    if call_id:
        stmt = stmt.where(t.c.call_id == call_id)
    if application_id:
        stmt = stmt.where(t.c.application_id == application_id)
    if limit:
        stmt = stmt.limit(limit)

    def iso(v: datetime | None) -> str | None:
        return v.isoformat(sep=" ") if v else None

    return [{"id": r.id, "kind": r.kind, "to": r.recipient, "recipient": r.recipient_id,
             "language": r.language, "status": r.status, "edited": bool(r.edited),
             "created_at": iso(r.created_at), "attempts": r.attempts,
             "last_error": r.last_error, "next_attempt_at": iso(r.next_attempt_at),
             "sent_at": iso(r.sent_at), "call": r.call_id, "application": r.application_id,
             "dedupe_key": r.dedupe_key} for r in conn.execute(stmt)]


def counts(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(_table.c.status, func.count()).group_by(_table.c.status)).all())


def requeue(conn: Connection, actor: str, ids: list[int] | None = None, in_doubt: bool = False,
            now: datetime | None = None) -> int:
    """Put failed (or, with `in_doubt`, stuck sending) messages back to pending with fresh attempts.

    An administrative act: each re-queued message gets a `notification_requeued` audit event.
    """
    now = now or clock.now()
    t = _table
    stmt = select(t)
    if in_doubt:
        stmt = stmt.where(t.c.status == "sending", t.c.next_attempt_at <= now)
    else:
        stmt = stmt.where(t.c.status == "failed")
    if ids:
        stmt = stmt.where(t.c.id.in_(ids))
    rows = conn.execute(stmt.order_by(t.c.id)).all()
    if ids:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"notification(s) {', '.join(map(str, missing))} are not "
                            f"{'in doubt' if in_doubt else 'failed'}; nothing was re-queued")
    if not rows:
        return 0
    conn.execute(update(t).where(t.c.id.in_([r.id for r in rows]))
                 .values(status="pending", attempts=0, next_attempt_at=now))
    audit.record(conn, actor, [audit.Event(
        "notification_requeued", r.call_id, r.application_id, None, None,
        {"notification": r.id, "kind": r.kind, "dedupe_key": r.dedupe_key, "was": r.status,
         "attempts": r.attempts, "last_error": r.last_error}) for r in rows], at=now)
    return len(rows)


# --- the held outbox: an administrator reviews, edits, releases or discards -----------

DISCARDED = "discarded"


def _held(conn: Connection, ids: list[int] | None, what: str, kind: str | None = None,
          call_id: str | None = None) -> list[Any]:
    t = _table
    stmt = select(t).where(t.c.status == HELD).order_by(t.c.id)
    if ids:
        stmt = stmt.where(t.c.id.in_(ids))
    if kind:
        stmt = stmt.where(t.c.kind == kind)
    if call_id:
        stmt = stmt.where(t.c.call_id == call_id)
    rows = conn.execute(stmt).all()
    if ids:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"notification(s) {', '.join(map(str, missing))} are not held; "
                           f"nothing was {what}")
    return rows


def held_one(conn: Connection, notification_id: int) -> Any:
    """One outbox row, any status (for `notify outbox show`)."""
    row = conn.execute(select(_table).where(_table.c.id == notification_id)).first()
    if row is None:
        raise NotFound(f"no notification {notification_id}")
    return row


def edit(conn: Connection, actor: Any, notification_id: int, subject: str, body: str,
         before: Rendered, now: datetime | None = None) -> None:
    """Replace a held message's subject and body (`before`: what it said), audited with both."""
    row = _held(conn, [notification_id], "edited")[0]
    now = now or clock.now()
    conn.execute(update(_table).where(_table.c.id == row.id, _table.c.status == HELD)
                 .values(edited={"subject": subject, "body": body, "by": getattr(actor, "name", actor),
                                 "at": now.isoformat(sep=" ")}))
    audit.record(conn, actor, [audit.Event(
        "notification_edited", row.call_id, row.application_id, None, None,
        {"notification": row.id, "kind": row.kind, "recipient": row.recipient_id,
         "dedupe_key": row.dedupe_key, "subject": {"old": before.subject, "new": subject},
         "body": {"old": before.body, "new": body}})], at=now)


def release(conn: Connection, actor: str, ids: list[int] | None = None, kind: str | None = None,
            call_id: str | None = None, now: datetime | None = None) -> int:
    """Let held messages go: back to the queue (pending, due now), each audited."""
    now = now or clock.now()
    rows = _held(conn, ids, "released", kind, call_id)
    if rows:
        conn.execute(update(_table).where(_table.c.id.in_([r.id for r in rows]),
                                          _table.c.status == HELD)
                     .values(status="pending", next_attempt_at=now))
        audit.record(conn, actor, [audit.Event(
            "notification_released", r.call_id, r.application_id, None, None,
            {"notification": r.id, "kind": r.kind, "recipient": r.recipient_id,
             "dedupe_key": r.dedupe_key, "edited": bool(r.edited)}) for r in rows], at=now)
    return len(rows)


def discard(conn: Connection, actor: str, ids: list[int], reason: str,
            now: datetime | None = None) -> int:
    """Never send these held messages; each audited with the reason."""
    now = now or clock.now()
    rows = _held(conn, ids, "discarded")
    conn.execute(update(_table).where(_table.c.id.in_([r.id for r in rows]),
                                      _table.c.status == HELD)
                 .values(status=DISCARDED, last_error=f"discarded: {reason}"))
    audit.record(conn, actor, [audit.Event(
        "notification_discarded", r.call_id, r.application_id, None, None,
        {"notification": r.id, "kind": r.kind, "recipient": r.recipient_id,
         "dedupe_key": r.dedupe_key, "reason": reason}) for r in rows], at=now)
    return len(rows)
