"""Append-only, hash-chained audit events and their queries.

Each event's hash covers its own fields and the previous event's hash, so an
edited, deleted, inserted or reordered row breaks the chain at that row.
Writers lock the single `audit_head` row, which keeps the chain linear when
several processes write at once; events are written in the same transaction as
the change they record (invariant 2).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lifecycle import bulk, clock
from lifecycle.models import AuditEvent, AuditHead

GENESIS = "0" * 64
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
    (lifecycle.bulk), so a batch of 100,000 neither waits on per-row ORM work
    nor holds every row in memory at once.
    """
    at = at or clock.now()
    at_text = at.isoformat(sep=" ")
    head: tuple[int, str] | None = None
    first = seq = 0
    prev = GENESIS
    sha, sep = hashlib.sha256, "\x1f"
    rows: list[tuple] = []
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
        if len(rows) >= _CHUNK:
            bulk.insert_rows(conn, _table, _COLUMNS, rows)
            rows = []
    if head is None:
        return []
    bulk.insert_rows(conn, _table, _COLUMNS, rows)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    return list(range(first, seq + 1))


@dataclass
class Break:
    """The first place where the chain does not hold, and what is wrong there."""

    seq: int
    problem: str


def verify(conn: Connection, batch: int = 20000) -> tuple[int, Break | None]:
    """Walk the whole chain in order; returns (events checked, first break or None)."""
    prev, expected, checked = GENESIS, 1, 0
    last = 0
    while True:
        rows = conn.execute(select(_table).where(_table.c.seq > last)
                            .order_by(_table.c.seq).limit(batch)).all()
        if not rows:
            break
        for r in rows:
            if r.seq != expected:
                return checked, Break(expected, f"event {expected} is missing (next is {r.seq})")
            if r.prev_hash != prev:
                return checked, Break(r.seq, "prev_hash does not match the previous event's hash")
            at = r.at.isoformat(sep=" ")
            digest = _digest(prev, r.seq, at, r.actor, r.action, r.call_id, r.application_id,
                             r.from_state, r.to_state, r.payload)
            if digest != r.hash:
                return checked, Break(r.seq, "contents do not match the event's hash "
                                             "(the row was edited)")
            prev, expected, checked, last = r.hash, expected + 1, checked + 1, r.seq
    head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
    if head is not None and (head.seq != checked or head.hash != prev):
        return checked, Break(checked + 1, f"the chain ends at event {checked} but its head "
                                           f"says {head.seq} (events were removed from the end)")
    return checked, None


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
