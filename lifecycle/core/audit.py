"""Append-only, hash-chained audit events and their queries.

Each event's hash covers its own fields and the previous event's hash, so an
edited, deleted, inserted or reordered row breaks the chain at that row.
Writers lock the single `audit_head` row, which keeps the chain linear when
several processes write at once; events are written in the same transaction as
the change they record (invariant 2).

`check` (`starfund audit verify`) walks the chain and also holds the trail
against the data it explains: every application in the state its last event
left it in, every application with its creation event, no creation event
without its application, no empty trail beside applications. A chain rewritten
consistently from the first edit on is not caught here (that needs a key).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from lifecycle.core import bulk, clock
from lifecycle.core.models import Application, AuditEvent, AuditHead

GENESIS = "0" * 64
CREATE = "create"
"""The action of the event that records an application's creation (engine.create_applications)."""
_table = AuditEvent.__table__


@dataclass(frozen=True)
class Event:
    """What one audit event says before it gets its place in the chain."""

    action: str
    call_id: str | None = None
    application_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    payload: dict[str, Any] | None = None


_encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=str).encode


def canonical(payload: dict[str, Any] | None) -> str:
    """The one JSON spelling of a payload, so the hash never depends on key order."""
    if payload and len(payload) == 1 and type(payload.get("version")) is int:
        return '{"version":%d}' % payload["version"]  # a plain move: most of a batch
    return _encode(payload or {})


def _digest(prev: str, seq: int, at: str, actor: str, action: str, call_id: str | None,
            application_id: str | None, from_state: str | None, to_state: str | None,
            payload: str) -> str:
    text = "\x1f".join([prev, str(seq), at, actor, action, call_id or "", application_id or "",
                        from_state or "", to_state or "", payload])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain's head row (creating it on first use) and return (seq, hash)."""
    stmt = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
        return 0, GENESIS
    return row.seq, row.hash


_COLUMNS = ("seq", "at", "actor", "action", "call_id", "application_id", "from_state",
            "to_state", "payload", "prev_hash", "hash")
_CHUNK = 5000


def record(conn: Connection, actor: str, events: Sequence[Event] | Iterable[Event],
           at: datetime | None = None) -> list[int]:
    """Append events to the chain in this transaction; returns their sequence numbers.

    Events are hashed and written in chunks straight through the driver
    (lifecycle.core.bulk), so a batch of 100,000 neither waits on per-row ORM work
    nor holds every row in memory at once.
    """
    at = at or clock.now()
    at_text = at.isoformat(sep=" ")
    head: tuple[int, str] | None = None
    first = seq = 0
    prev = GENESIS
    sha, sep = hashlib.sha256, "\x1f"
    rows: list[tuple] = []
    chunk = bulk.chunk_rows(_CHUNK)
    for ev in events:
        if head is None:
            head = _lock_head(conn)
            seq, prev = head
            first = seq + 1
        seq += 1
        payload = canonical(ev.payload)
        digest = sha(sep.join((prev, str(seq), at_text, actor, ev.action, ev.call_id or "",
                               ev.application_id or "", ev.from_state or "", ev.to_state or "",
                               payload)).encode("utf-8")).hexdigest()
        rows.append((seq, at, actor, ev.action, ev.call_id, ev.application_id, ev.from_state,
                     ev.to_state, payload, prev, digest))
        prev = digest
        if len(rows) >= chunk:
            bulk.insert_rows(conn, _table, _COLUMNS, rows)
            rows = []
    if head is None:
        return []
    bulk.insert_rows(conn, _table, _COLUMNS, rows)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    return list(range(first, seq + 1))


@dataclass
class Break:
    """A place where the chain does not hold, and what is wrong there."""

    seq: int
    problem: str


SHOW = 5
"""How many ids (or event numbers) a problem names; its count says how many there are."""


@dataclass
class Problem:
    """One kind of inconsistency found by `check`: how many, the first few, and a one-line account."""

    check: str
    """chain, head, empty, state, creation or orphan."""
    count: int
    first: list[str]
    message: str


@dataclass
class Verification:
    """What `check` found: the events walked, the applications compared, every problem."""

    checked: int
    applications: int
    problems: list[Problem]
    first_break: Break | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(conn: Connection, batch: int) -> tuple[int, int, str, list[Break], int]:
    """Stream the chain in seq order: (events read, last seq, last hash, first breaks, breaks).

    The walk does not stop at a break: after one it goes on from the stored
    row, so each edited, missing or reordered event is counted once.
    """
    prev, expected, checked, last = GENESIS, 1, 0, 0
    breaks: list[Break] = []
    count = 0

    def broken(seq: int, problem: str) -> None:
        nonlocal count
        count += 1
        if len(breaks) < SHOW:
            breaks.append(Break(seq, problem))

    while True:
        rows = conn.execute(select(_table).where(_table.c.seq > last)
                            .order_by(_table.c.seq).limit(batch)).all()
        if not rows:
            break
        for r in rows:
            if r.seq != expected:
                gap = f"event {expected}" if r.seq == expected + 1 else \
                    f"events {expected} to {r.seq - 1}"
                broken(expected, f"{gap} {'is' if r.seq == expected + 1 else 'are'} missing "
                                 f"(next is {r.seq})")
            elif r.prev_hash != prev:
                broken(r.seq, "prev_hash does not match the previous event's hash")
            digest = _digest(r.prev_hash, r.seq, r.at.isoformat(sep=" "), r.actor, r.action,
                             r.call_id, r.application_id, r.from_state, r.to_state, r.payload)
            if digest != r.hash:
                broken(r.seq, "contents do not match the event's hash (the row was edited)")
            prev, expected, checked, last = r.hash, r.seq + 1, checked + 1, r.seq
    return checked, last, prev, breaks, count


def verify(conn: Connection, batch: int = 20000) -> tuple[int, Break | None]:
    """The hash chain alone: (events checked, first break or None). See `check` for the rest."""
    checked, last, prev, breaks, _ = _walk(conn, batch)
    head = _head_break(conn, last, prev)
    return checked, (breaks[0] if breaks else head)


def _head_break(conn: Connection, last: int, prev: str) -> Break | None:
    head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
    if head is None:
        return Break(1, f"the chain's head row is missing but the chain has {last} events") \
            if last else None
    if head.seq > last:
        return Break(last + 1, f"the chain ends at event {last} but its head says {head.seq} "
                               "(events were removed from the end)")
    if head.seq < last:
        return Break(head.seq + 1, f"the chain goes on to event {last} but its head says "
                                   f"{head.seq} (events were added behind the writer's back)")
    if head.hash != prev:
        return Break(last, "the last event's hash does not match the chain's head")
    return None


def _first(conn: Connection, stmt: Any, label: Any) -> tuple[int, list[Any]]:
    """Run a problem query once: the total (a window count) and its first SHOW rows."""
    rows = conn.execute(stmt.add_columns(func.count().over().label("n_total"))
                        .order_by(label).limit(SHOW)).all()
    return (rows[0].n_total if rows else 0), rows


def _ids(rows: list[Any], total: int) -> str:
    shown = ", ".join(str(r[0]) for r in rows)
    return shown + (f" and {total - len(rows)} more" if total > len(rows) else "")


def check(conn: Connection, batch: int = 20000) -> Verification:
    """Check the trail as a chain and against the applications it explains.

    Beside the hash chain (streamed, `batch` events at a time) and its head,
    one set-based query each: every application's state is the destination
    (to_state) of its last state-carrying event; every application has its
    "create" event; every "create" event's application still exists; a
    database with applications has a trail at all. Every problem is
    reported, with its count and the first few ids.
    """
    t, a = _table, Application.__table__
    problems: list[Problem] = []
    checked, last, prev, breaks, n_breaks = _walk(conn, batch)
    if breaks:
        b = breaks[0]
        more = (f"; {n_breaks} breaks in all, at events "
                f"{', '.join(str(x.seq) for x in breaks)}"
                f"{' and more' if n_breaks > len(breaks) else ''}") if n_breaks > 1 else ""
        problems.append(Problem("chain", n_breaks, [str(x.seq) for x in breaks],
                                f"audit chain BROKEN at event {b.seq}: {b.problem}{more}"))
    head = _head_break(conn, last, prev)
    if head is not None:
        problems.append(Problem("head", 1, [str(head.seq)],
                                f"audit chain BROKEN at event {head.seq}: {head.problem}"))
    apps = conn.execute(select(func.count()).select_from(a)).scalar_one()
    if apps and not checked:
        problems.append(Problem("empty", apps, [], f"the audit trail is empty but the database "
                                                    f"holds {apps} application(s)"))

    moves = (select(t.c.application_id, func.max(t.c.seq).label("seq"))
             .where(t.c.application_id.is_not(None), t.c.to_state.is_not(None))
             .group_by(t.c.application_id).subquery("last_move"))
    ev = t.alias("ev")
    n, rows = _first(conn, select(a.c.id, a.c.state, ev.c.seq, ev.c.to_state)
                     .join(moves, moves.c.application_id == a.c.id)
                     .join(ev, ev.c.seq == moves.c.seq)
                     .where(ev.c.to_state != a.c.state), a.c.id)
    if n:
        detail = "; ".join(f"{r.id} is {r.state}, event {r.seq} left it {r.to_state}"
                           for r in rows)
        problems.append(Problem("state", n, [r.id for r in rows],
                                f"{n} application(s) not in the state their last audit event "
                                f"left them in (changed behind the engine's back): {detail}"
                                + (f" and {n - len(rows)} more" if n > len(rows) else "")))

    created = select(t.c.seq).where(t.c.application_id == a.c.id, t.c.action == CREATE)
    n, rows = _first(conn, select(a.c.id).where(~created.exists()), a.c.id)
    if n:
        problems.append(Problem("creation", n, [r.id for r in rows],
                                f"{n} application(s) without a creation event "
                                f"(inserted behind the engine's back, or their events were "
                                f"deleted): {_ids(rows, n)}"))

    alive = select(a.c.id).where(a.c.id == t.c.application_id)
    n, rows = _first(conn, select(t.c.application_id, t.c.seq)
                     .where(t.c.action == CREATE, ~alive.exists()), t.c.seq)
    if n:
        problems.append(Problem("orphan", n, [r.application_id for r in rows],
                                f"{n} application(s) created in the trail are missing from the "
                                f"database (deleted behind the engine's back): {_ids(rows, n)}"))
    return Verification(checked, apps, problems, breaks[0] if breaks else head)


@dataclass
class Query:
    """Filters for `audit query`; every field is optional."""

    call_id: str | None = None
    application_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    newest_first: bool = False
    limit: int | None = 50
    offset: int = 0


def query(conn: Connection, q: Query) -> list[dict[str, Any]]:
    """Audit events matching `q`, as plain dicts with the payload decoded."""
    t = _table
    stmt = select(t)
    if q.call_id:
        stmt = stmt.where(t.c.call_id == q.call_id)
    if q.application_id:
        stmt = stmt.where(t.c.application_id == q.application_id)
    if q.actor:
        stmt = stmt.where(t.c.actor == q.actor)
    if q.action:
        stmt = stmt.where(t.c.action == q.action)
    if q.since:
        stmt = stmt.where(t.c.at >= q.since)
    if q.until:
        stmt = stmt.where(t.c.at < q.until)
    stmt = stmt.order_by(t.c.seq.desc() if q.newest_first else t.c.seq)
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    if q.offset:
        stmt = stmt.offset(q.offset)
    return [as_dict(r) for r in conn.execute(stmt)]


def as_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["payload"] = json.loads(d["payload"])
    d["at"] = d["at"].isoformat(sep=" ")
    return d


def iter_rows(conn: Connection, q: Query) -> Iterator[dict[str, Any]]:
    """All matching events, page by page, for exports that must not hold everything in memory."""
    page = Query(**{**q.__dict__, "limit": 5000, "offset": q.offset})
    while True:
        rows = query(conn, page)
        yield from rows
        if len(rows) < 5000:
            return
        page.offset += 5000
