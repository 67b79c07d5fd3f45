"""Append-only, keyed hash-chained audit events and their queries.

Each event's hash is an HMAC-SHA256 (HMAC-SM3 on a database made with `init --crypto sm`:
the key file, the meta row and the `database_init` event say which), under the database's
chain key (`lifecycle.core.keys`, a file outside the database), of its own fields and the
previous event's hash, so an edited, deleted, inserted or reordered row breaks the
chain at that row, and whoever can write to the database but lacks the key cannot
rewrite the events and recompute the chain. Each event records the programme time it
speaks for (`at`, which a simulation moves) and when it was written (`written_at`,
the wall clock), the account it was done as and, when another account really issued
it, that one too (`by`). Writers lock the single `audit_head` row (which carries a
keyed MAC of the head), which keeps the chain linear when several processes write at
once; events are written in the same transaction as the change they record
(invariant 2). On a live database no event is written at a simulated time.

`check` (`starfund audit verify`) walks the chain and also holds the trail against the
data it explains: every application in the state its last event left it in, every
application with its creation event, no application the trail creates or moves missing
from the database, no empty trail beside applications, the database's mode and id as its
`database_init` event recorded them, and, from the event that recorded a database live,
every event's time the time it was written (`LAG`, `LEAD`). Without the key it still
checks the links and the data, and says that it is unkeyed (and proves less: whoever can
write to the database can rewrite an unkeyed-checked trail consistently); anchors
(`lifecycle.core.anchors`) then prove that the heads signed earlier are still in the trail.
The key comes from the operator's own files (`lifecycle.core.keys`), never from the
database, and a writer whose key does not verify the head writes nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import json.scanner
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on

from lifecycle.core import bulk, clock, keys, meta, personal, sealing
from lifecycle.core.models import Application, AuditEvent, AuditHead
from lifecycle.core.progress import SILENT, Progress

GENESIS = "0" * 64
CREATE = "create"
"""The action of the event that records an application's creation (engine.create_applications)."""
INIT = "database_init"
"""The action of the event that records the database's id, mode and keys (`starfund init`)."""
_table = AuditEvent.__table__


class Event(NamedTuple):
    """What one audit event says before it gets its place in the chain (a tuple: a batch
    makes one per application)."""

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


def _plain_digest(prev: str, seq: int, at: str, actor: str, action: str, call_id: str | None,
                  application_id: str | None, from_state: str | None, to_state: str | None,
                  payload: str) -> str:
    """An event written before the chain was keyed (a database upgraded from then)."""
    text = "\x1f".join([prev, str(seq), at, actor, action, call_id or "", application_id or "",
                        from_state or "", to_state or "", payload])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _keyed_digest(secret: bytes, prev: str, seq: int, at: str, written: str, actor: str,
                  by: str | None, action: str, call_id: str | None, application_id: str | None,
                  from_state: str | None, to_state: str | None, payload: str,
                  hash_name: str = "sha256") -> str:
    text = "\x1f".join([prev, str(seq), at, written, actor, by or "", action, call_id or "",
                        application_id or "", from_state or "", to_state or "", payload])
    return hmac.digest(secret, text.encode("utf-8"), hash_name).hex()


def head_mac(secret: bytes, seq: int, digest: str, hash_name: str = "sha256") -> str:
    """The head row's own MAC: moving the head back to an earlier event needs the key too."""
    return hmac.digest(secret, f"head\x1f{seq}\x1f{digest}".encode(), hash_name).hex()


def chain_key(conn: Connection) -> keys.ChainKey:
    """The key this database's events are written with (from the operator's files, never
    from where the database says); refuses a simulated time on a live database, live by its
    mode row or by its trail (every act's event passes here, so no door can back-date a live
    act, even with the mode row relabelled)."""
    facts = meta.read(conn)
    if clock.simulated():
        meta.refuse_simulated_time(facts.get(meta.MODE), True)
        meta.refuse_simulated_time(trail_mode(conn), True)
    if meta.DATABASE_ID not in facts:
        raise keys.NotFound("this database has no id and no audit key yet: run `starfund init`")
    key = keys.load_chain_key(facts[meta.DATABASE_ID])
    said = facts.get(meta.CRYPTO) or keys.STANDARD
    if key.crypto != said:
        raise WrongCrypto(f"the audit chain key {key.path} is a crypto {key.crypto} key "
                          f"({keys.crypto(key.crypto).label}) but this database is crypto "
                          f"{said}: it is not this database's key; nothing was written")
    return key


def trail_crypto(conn: Connection) -> str:
    """The crypto the trail's `database_init` event recorded (standard when it names none, as
    before the choice, or when there is no such event yet)."""
    row = conn.execute(select(_table.c.payload).where(_table.c.action == INIT)
                       .order_by(_table.c.seq.desc()).limit(1)).first()
    return (json.loads(row.payload).get(meta.CRYPTO) if row else None) or keys.STANDARD


def trail_mode(conn: Connection) -> str | None:
    """The mode the trail last recorded (its `database_init` event's), None before one."""
    row = conn.execute(select(_table.c.payload).where(_table.c.action == INIT)
                       .order_by(_table.c.seq.desc()).limit(1)).first()
    return json.loads(row.payload).get(meta.MODE) if row else None


class WrongKey(keys.BadValue):
    """The chain key at hand does not verify the chain's head: nothing is written with it."""


class WrongCrypto(keys.BadValue):
    """The chain key file names another crypto than the database's: it is not its key."""


def _who(actor: Any) -> tuple[str, str | None]:
    """An actor's (name, by): an account (`lifecycle.core.accounts.Actor`) or a plain name."""
    if isinstance(actor, str):
        return actor, None
    return actor.name, actor.by


def _lock_head(conn: Connection, key: keys.ChainKey) -> tuple[int, str]:
    """Lock the chain's head row (creating it on first use) and return (seq, hash), once
    `key` verifies the head's MAC: an event written with another key (a forged one with this
    database's id) would stay broken for good, so none is."""
    stmt = select(AuditHead.seq, AuditHead.hash, AuditHead.mac).where(AuditHead.id == 1)
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
        return 0, GENESIS
    if row.seq >= key.first_seq and row.mac != head_mac(key.secret, row.seq, row.hash,
                                                        key.hash):
        raise WrongKey(f"the audit chain key {key.path} does not verify the chain's head "
                       f"(event {row.seq}): it is not this trail's key, or the head was changed "
                       "behind the engine's back; nothing was written (`starfund audit verify` "
                       "with the right key says which)")
    return row.seq, row.hash


_COLUMNS = ("seq", "at", "written_at", "actor", "by", "action", "call_id", "application_id",
            "from_state", "to_state", "payload", "prev_hash", "hash")
_CHUNK = 5000


def record(conn: Connection, actor: Any, events: Sequence[Event] | Iterable[Event],
           at: datetime | None = None) -> list[int]:
    """Append events to the chain in this transaction; returns their sequence numbers.

    `actor` is an account (`accounts.Actor`: its name, and `by` when another account issued
    the act) or, for the system's own acts, a name. The payload fields the personal-data
    register names (`personal.SEALED`) are sealed under their person's key (`sealing`)
    before hashing. Events are keyed-hashed and written in chunks straight through the
    driver (lifecycle.core.bulk), so a batch of 100,000 neither waits on per-row ORM work
    nor holds every row in memory at once.
    """
    name, by = _who(actor)
    key = chain_key(conn)
    at = at or clock.now()
    at_text = at.isoformat(sep=" ")
    written = clock.wall()
    written_text = written.isoformat(sep=" ")
    head: tuple[int, str] | None = None
    first = seq = 0
    prev = GENESIS
    secret, mac, sep, hash_name = key.secret, hmac.digest, "\x1f", key.hash
    fixed = sep.join((at_text, written_text, name, by or ""))
    rows: list[tuple] = []
    chunk = bulk.chunk_rows(_CHUNK)
    sealed, sealer = personal.SEALED, None
    for ev in events:
        if head is None:
            head = _lock_head(conn, key)
            seq, prev = head
            first = seq + 1
        seq += 1
        rule = sealed.get(ev.action)
        if rule is not None and ev.payload and rule.holds_values(ev.payload):  # invariant 11
            sealer = sealer or sealing.Sealer(conn, key)
            payload = canonical(sealer.seal_fields(rule.subject_of(ev.payload, name),
                                                   ev.payload, rule.fields))
        else:
            payload = canonical(ev.payload)
        digest = mac(secret, sep.join((prev, str(seq), fixed, ev.action, ev.call_id or "",
                                       ev.application_id or "", ev.from_state or "",
                                       ev.to_state or "", payload)).encode("utf-8"),
                     hash_name).hex()
        rows.append((seq, at, written, name, by, ev.action, ev.call_id, ev.application_id,
                     ev.from_state, ev.to_state, payload, prev, digest))
        prev = digest
        if len(rows) >= chunk:
            bulk.insert_rows(conn, _table, _COLUMNS, rows, binary=True)
            rows = []
    if head is None:
        return []
    bulk.insert_rows(conn, _table, _COLUMNS, rows, binary=True)
    conn.execute(update(AuditHead).where(AuditHead.id == 1)
                 .values(seq=seq, hash=prev, mac=head_mac(secret, seq, prev, hash_name)))
    return list(range(first, seq + 1))


REDACTING = ("person_erase", "trail_seal")
"""The actions whose payload's "redacted" list attests earlier events they rewrote: each
[seq, MAC of the new payload], so `check` accepts the rewritten payload of that event, and
only that one (a person's clear values erased, or sealed after an upgrade)."""


def redaction_mac(secret: bytes, seq: int, payload: str, hash_name: str = "sha256") -> str:
    return hmac.digest(secret, f"redacted\x1f{seq}\x1f{payload}".encode(),
                       hash_name).hex()


def redact(conn: Connection, key: keys.ChainKey,
           changes: dict[int, dict[str, Any]]) -> list[list[Any]]:
    """Rewrite the payloads of earlier events, each after checking that it still verifies as
    it stands (an erasure must not launder an edit); returns the [seq, MAC] attestations
    the caller records in its own event (REDACTING), in this transaction.

    The events' hashes and links stay as they are, so the chain and every anchor still hold.
    """
    if not changes:
        return []
    attested = _attested(conn, key.secret)
    iso = _at_text(conn.dialect)
    out: list[list[Any]] = []
    for row in conn.execute(select(*(_table.c[c] for c in _WALKED))
                            .where(_table.c.seq.in_(sorted(changes))).order_by(_table.c.seq)):
        if row.seq >= key.first_seq:
            digest = _keyed_digest(key.secret, row.prev_hash, row.seq, iso(row.at),
                                   iso(row.written_at), row.actor, row.by, row.action,
                                   row.call_id, row.application_id, row.from_state,
                                   row.to_state, row.payload, key.hash)
        else:
            digest = _plain_digest(row.prev_hash, row.seq, iso(row.at), row.actor, row.action,
                                   row.call_id, row.application_id, row.from_state,
                                   row.to_state, row.payload)
        if digest != row.hash and attested.get(row.seq) != redaction_mac(
                key.secret, row.seq, row.payload, key.hash):
            raise keys.BadValue(f"audit event {row.seq} does not verify as it stands (it was "
                                "edited); nothing was erased: run `starfund audit verify`")
        text = canonical(changes[row.seq])
        conn.execute(update(_table).where(_table.c.seq == row.seq).values(payload=text))
        out.append([row.seq, redaction_mac(key.secret, row.seq, text, key.hash)])
    return out


def seal_clear(conn: Connection, key: keys.ChainKey,
               subjects: set[str] | None = None) -> list[list[Any]]:
    """Seal the personal values an earlier release wrote into the trail in clear (the
    register's fields of the actions it names; only `subjects`' when given), the rewrite
    attested (`redact`); returns the attestations for the caller's REDACTING event."""
    t = _table
    sealer = sealing.Sealer(conn, key)
    changes: dict[int, dict[str, Any]] = {}
    rows = conn.execute(select(t.c.seq, t.c.actor, t.c.action, t.c.payload).where(
        t.c.action.in_(personal.SEALED), t.c.payload.not_like(f'%"{sealing.MARK}"%')))
    for seq, actor, action, text in rows:
        rule, payload = personal.SEALED[action], json.loads(text)
        subject = rule.subject_of(payload, actor)
        if (subjects is None or subject in subjects) and rule.holds_values(payload):
            changes[seq] = sealer.seal_fields(subject, payload, rule.fields)
    return redact(conn, key, changes)


def _attested(conn: Connection, secret: bytes | None) -> dict[int, str]:
    """seq -> the MAC its rewritten payload must have, from the REDACTING events (the latest
    attestation of an event wins; one can only attest an event before itself)."""
    if secret is None:
        return {}
    out: dict[int, str] = {}
    for seq, payload in conn.execute(select(_table.c.seq, _table.c.payload)
                                     .where(_table.c.action.in_(REDACTING))
                                     .order_by(_table.c.seq)):
        for done, mac in json.loads(payload).get("redacted", []):
            if isinstance(done, int) and done < seq:
                out[done] = mac
    return out


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
    """crypto, chain, head, time, empty, state, creation, orphan or mode."""
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
    keyed: bool = True
    """False when the chain key was not at hand: the events' contents were not checked."""
    mode: str | None = None
    crypto: str = keys.STANDARD
    """The crypto the trail was checked as (`keys.CRYPTOS`)."""

    @property
    def ok(self) -> bool:
        return not self.problems


@lru_cache(maxsize=8)
def _at_text(dialect: Any) -> Any:
    """How a stored event time becomes the text the chain hashes (`datetime.isoformat(" ")`).

    PostgreSQL gives datetimes. SQLite gives the text SQLAlchemy stored
    ("2025-04-08 09:00:00.000000"): its isoformat is that text, without ".000000" when
    there are no microseconds; any other spelling is parsed, as SQLAlchemy would.
    """
    if dialect.name != "sqlite":
        return lambda v: None if v is None else v.isoformat(sep=" ")
    parse = _table.c.at.type.dialect_impl(dialect).result_processor(dialect, None)

    def text(v: Any) -> str | None:
        if v.__class__ is str and len(v) == 26 and v[19] == "." and v[10] == " ":
            return v[:19] if v.endswith(".000000") else v
        if v is None:
            return None
        return (parse(v) if isinstance(v, str) else v).isoformat(sep=" ")
    return text


_WALKED = ("seq", "prev_hash", "hash", "at", "written_at", "actor", "by", "action", "call_id",
           "application_id", "from_state", "to_state", "payload")


LAG, LEAD = timedelta(hours=1), timedelta(minutes=1)
"""On a live database an event's time (`at`) is the clock's when the act began: at most LAG
before the time it was written (a long command records the time it started), at most LEAD
after it (the clock stepped back). Anything else was back- or forward-dated."""


class _Walked(NamedTuple):
    checked: int
    last: int
    prev: str
    breaks: list[Break]
    count: int
    """Breaks in all (`breaks` holds the first SHOW)."""
    dated: list[Break]
    dated_count: int
    """Events of a live trail whose time is not when they were written (`dated`: the first)."""


def _apart(at: Any, written: Any) -> timedelta:
    """written - at, the stored times as datetimes (SQLite gives text)."""
    if isinstance(at, str):
        at, written = datetime.fromisoformat(at), datetime.fromisoformat(written)
    return written - at


def _walk(conn: Connection, batch: int, key: keys.ChainKey | None,
          keyed_from: int, progress: Progress = SILENT) -> _Walked:
    """Stream the chain in seq order (see `_Walked`).

    The trail's own `database_init` events say whether the database is live from there on:
    a live event's time must be when it was written (LAG, LEAD), whatever the mode row says.

    Events from `keyed_from` on are checked against their HMAC when `key` is given;
    without it only their links are (the caller says the check was unkeyed). Events
    before it (an upgraded database's) against their plain SHA-256. The walk does not
    stop at a break: after one it goes on from the stored row, so each edited, missing or
    reordered event is counted once. Read through the raw driver, `batch` events a query
    (by seq), as tuples: the walk costs little more than the hashing itself.
    """
    prev, expected, checked, last = GENESIS, 1, 0, 0
    breaks: list[Break] = []
    dated: list[Break] = []
    count = dated_count = 0
    live = False

    def broken(seq: int, problem: str) -> None:
        nonlocal count
        count += 1
        if len(breaks) < SHOW:
            breaks.append(Break(seq, problem))

    edited = ("contents do not match the event's keyed hash (the row was edited, or the key "
              "file is not this trail's key)")
    iso = _at_text(conn.dialect)
    mark = "%s" if bulk.is_postgres(conn) else "?"
    sql = (f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in _WALKED)} "
           f"FROM audit_events WHERE seq > {mark} ORDER BY seq LIMIT {int(batch)}")
    secret = key.secret if key is not None else None
    attested = _attested(conn, secret)
    cur = bulk.raw_cursor(conn)
    mac, sep, hash_name = hmac.digest, "\x1f", key.hash if key is not None else "sha256"

    def rewritten(seq: int, payload: str) -> bool:
        """An erasure (or sealing) attested this event's payload as it now stands."""
        return seq in attested and attested[seq] == redaction_mac(secret, seq, payload,
                                                                  hash_name)
    while True:
        cur.execute(sql, (last,))
        rows = cur.fetchall()
        if not rows:
            break
        for (seq, prev_hash, digest, at, written_at, actor, by, action, call_id, app_id,
             from_state, to_state, payload) in rows:
            if seq != expected:
                gap = f"event {expected}" if seq == expected + 1 else \
                    f"events {expected} to {seq - 1}"
                broken(expected, f"{gap} {'is' if seq == expected + 1 else 'are'} missing "
                                 f"(next is {seq})")
            elif prev_hash != prev:
                broken(seq, "prev_hash does not match the previous event's hash")
            if seq < keyed_from:
                if _plain_digest(prev_hash, seq, iso(at), actor, action, call_id, app_id,
                                 from_state, to_state, payload) != digest and \
                        not rewritten(seq, payload):
                    broken(seq, "contents do not match the event's hash (the row was edited)")
            elif written_at is None:
                broken(seq, "a keyed event without the time it was written (the row was "
                            "edited to pass as an unkeyed one)")
            elif secret is not None and mac(secret, sep.join((
                    prev_hash, str(seq), iso(at), iso(written_at), actor, by or "", action,
                    call_id or "", app_id or "", from_state or "", to_state or "",
                    payload)).encode("utf-8"), hash_name).hex() != digest and \
                    not rewritten(seq, payload):
                broken(seq, edited)
            if action == INIT:
                live = json.loads(payload).get(meta.MODE) == meta.LIVE
            if live and at != written_at and written_at is not None and \
                    not -LEAD <= _apart(at, written_at) <= LAG:
                dated_count += 1
                if len(dated) < SHOW:
                    dated.append(Break(seq, f"event {seq} at {iso(at)}, written {iso(written_at)}"))
            prev, expected, last = digest, seq + 1, seq
        checked += len(rows)
        progress.advance(len(rows))
    cur.close()
    return _Walked(checked, last, prev, breaks, count, dated, dated_count)


def _keyed_from(conn: Connection, key: keys.ChainKey | None) -> int:
    """The first keyed event: the key file says (the meta row is only a hint without it)."""
    if key is not None:
        return key.first_seq
    return int(meta.read(conn).get(meta.KEYED_FROM, 1))


def _head_seq(conn: Connection) -> int:
    """How many events the chain's head says there are (0 without a head)."""
    return conn.execute(select(AuditHead.seq)).scalar() or 0


def _head_break(conn: Connection, last: int, prev: str,
                key: keys.ChainKey | None) -> Break | None:
    head = conn.execute(select(AuditHead.seq, AuditHead.hash, AuditHead.mac)).first()
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
    if key is not None and last >= key.first_seq and \
            head.mac != head_mac(key.secret, last, prev, key.hash):
        return Break(last, "the chain's head does not carry its keyed MAC (the head was moved, "
                           "e.g. back over deleted events, without the key)")
    return None


def check(conn: Connection, key: keys.ChainKey | None, batch: int = 20000,
          progress: Progress = SILENT) -> Verification:
    """Check the trail as a chain and against the applications it explains.

    Beside the hash chain (streamed, `batch` events at a time) and its head, one
    set-based query (`_data_problems`) holds the applications against their trail, and a
    database with applications must have a trail at all. Every problem is reported, with
    its count and the first few ids. Without `key` the events' contents are not checked
    (`Verification.keyed` is False and the command says so). Run it in `db.reading`: the
    walk, the head and the data are then read from one snapshot, even while others write.
    `progress` is told the walk's pages ("verifying", of the events the head counts), then
    the comparison with the applications ("comparing").
    """
    a = Application.__table__
    problems: list[Problem] = []
    crypto = trail_crypto(conn)
    if key is not None and key.crypto != crypto:   # a problem, never a reason to check less
        problems.append(Problem("crypto", 1, [], (
            f"the chain key {key.path} says crypto {key.crypto} "
            f"({keys.crypto(key.crypto).label}) but the trail's database_init event records "
            f"crypto {crypto} ({keys.crypto(crypto).label}): the key file is not this trail's "
            f"key, or one of them was edited; every event was checked with the key file's "
            f"HMAC-{key.hash.upper()}")))
    progress.step("verifying", total=lambda: _head_seq(conn))
    walked = _walk(conn, batch, key, _keyed_from(conn, key), progress)
    checked, last, prev, breaks, n_breaks = walked[:5]
    if breaks:
        b = breaks[0]
        more = (f"; {n_breaks} breaks in all, at events "
                f"{', '.join(str(x.seq) for x in breaks)}"
                f"{' and more' if n_breaks > len(breaks) else ''}") if n_breaks > 1 else ""
        problems.append(Problem("chain", n_breaks, [str(x.seq) for x in breaks],
                                f"audit chain BROKEN at event {b.seq}: {b.problem}{more}"))
    head = _head_break(conn, last, prev, key)
    if head is not None:
        problems.append(Problem("head", 1, [str(head.seq)],
                                f"audit chain BROKEN at event {head.seq}: {head.problem}"))
    progress.step("comparing", total=None)
    apps = conn.execute(select(func.count()).select_from(a)).scalar_one()
    if apps and not checked:
        problems.append(Problem("empty", apps, [], f"the audit trail is empty but the database "
                                                    f"holds {apps} application(s)"))

    if walked.dated_count:
        n = walked.dated_count
        problems.append(Problem(
            "time", n, [str(b.seq) for b in walked.dated],
            f"{n} event(s) of a live database carry a time that is not when they were written "
            f"(more than {LAG} before or {LEAD} after: back- or forward-dated): "
            + "; ".join(b.problem for b in walked.dated)
            + (f" and {n - len(walked.dated)} more" if n > len(walked.dated) else "")))
    problems += _data_problems(conn)
    problems += _mode_problems(conn)
    return Verification(checked, apps, problems, breaks[0] if breaks else head, key is not None,
                        meta.mode(conn), key.crypto if key is not None else crypto)


def _last_moves(conn: Connection) -> Any:
    """Each application's last state-carrying event (application_id, seq, to_state), read
    in order off `ix_audit_moves`: PostgreSQL's DISTINCT ON, SQLite's max() whose bare
    columns come from the row holding the maximum (documented SQLite behaviour)."""
    t = _table
    moved = (t.c.application_id.is_not(None), t.c.to_state.is_not(None))
    if bulk.is_postgres(conn):
        return (select(t.c.application_id, t.c.seq, t.c.to_state).where(*moved)
                .ext(distinct_on(t.c.application_id))
                .order_by(t.c.application_id.desc(), t.c.seq.desc()).subquery("last"))
    return (select(t.c.application_id, func.max(t.c.seq).label("seq"), t.c.to_state)
            .where(*moved).group_by(t.c.application_id).subquery("last"))


def _joined(conn: Connection) -> Iterator[tuple[str, Any]]:
    """PostgreSQL: one full join of the applications, their last moves and the creation
    events (hash joins: a few seconds for a million applications)."""
    t, a = _table, Application.__table__
    last = _last_moves(conn)
    made = select(t.c.application_id).where(t.c.action == CREATE).subquery("made")
    key = func.coalesce(a.c.id, last.c.application_id, made.c.application_id)
    stmt = (select(key.label("id"), a.c.state, last.c.seq, last.c.to_state,
                   a.c.id.label("held"), made.c.application_id.label("created"))
            .select_from(a.join(last, last.c.application_id == a.c.id, full=True)
                         .join(made, made.c.application_id
                               == func.coalesce(a.c.id, last.c.application_id), full=True))
            .where(or_(a.c.id.is_(None), made.c.application_id.is_(None),
                       last.c.to_state != a.c.state))
            .order_by(key))
    seen = None
    for row in conn.execute(stmt.execution_options(stream_results=True, yield_per=1000)):
        if row.id == seen:          # an application with two creation events: once
            continue
        seen = row.id
        if row.held is None:
            yield "orphan", row
            continue
        if row.created is None:
            yield "creation", row
        if row.to_state is not None and row.to_state != row.state:
            yield "state", row


def _separately(conn: Connection) -> Iterator[tuple[str, Any]]:
    """SQLite: one query per problem, each an index search per application (SQLite runs a
    full join as nested scans)."""
    t, a = _table, Application.__table__
    last = _last_moves(conn)
    queries = {
        "state": select(a.c.id, a.c.state, last.c.seq, last.c.to_state)
        .join(last, last.c.application_id == a.c.id)
        .where(last.c.to_state != a.c.state).order_by(a.c.id),
        "creation": select(a.c.id).where(~select(t.c.seq).where(
            t.c.application_id == a.c.id, t.c.action == CREATE).exists()).order_by(a.c.id),
        "orphan": select(last.c.application_id.label("id")).where(~select(a.c.id).where(
            a.c.id == last.c.application_id).exists()).order_by(last.c.application_id),
    }
    for kind, stmt in queries.items():
        for row in conn.execute(stmt.execution_options(yield_per=1000)):
            yield kind, row


def _data_problems(conn: Connection) -> list[Problem]:
    """The applications against their trail: every application is in the state (to_state)
    its last state-carrying event left it in; every application has its "create" event; no
    application moved or created in the trail is missing from the database.

    Only the rows with a problem come back (none on a sound trail), streamed in id order,
    so a million problems are counted without being held.
    """
    found: dict[str, list[Any]] = {"state": [], "creation": [], "orphan": []}
    counts = dict.fromkeys(found, 0)
    for kind, row in (_joined if bulk.is_postgres(conn) else _separately)(conn):
        counts[kind] += 1
        if len(found[kind]) < SHOW:
            found[kind].append(row)
    problems = []
    for kind, what, named, between in _DATA_PROBLEMS:
        n, rows = counts[kind], found[kind]
        if n:
            names = between.join(named(r) for r in rows)
            more = f" and {n - len(rows)} more" if n > len(rows) else ""
            problems.append(Problem(kind, n, [r.id for r in rows],
                                    f"{n} application(s) {what}: {names}{more}"))
    return problems


_DATA_PROBLEMS = (  # kind, what the applications are, how one is named, between two names
    ("state", "not in the state their last audit event left them in (changed behind the "
              "engine's back)",
     lambda r: f"{r.id} is {r.state}, event {r.seq} left it {r.to_state}", "; "),
    ("creation", "without a creation event (inserted behind the engine's back, or their "
                 "events were deleted)", lambda r: str(r.id), ", "),
    ("orphan", "created or moved in the trail are missing from the database (deleted behind "
               "the engine's back)", lambda r: str(r.id), ", "),
)


def _mode_problems(conn: Connection) -> list[Problem]:
    """The database's id and mode must be those its last `database_init` event recorded."""
    facts = meta.read(conn)
    row = conn.execute(select(_table.c.seq, _table.c.payload).where(_table.c.action == INIT)
                       .order_by(_table.c.seq.desc()).limit(1)).first()
    if row is None:
        if not facts.get(meta.MODE) and not conn.execute(select(_table.c.seq).limit(1)).first():
            return []  # a database `init` has not finished: nothing claims anything yet
        return [Problem("mode", 1, [], f"the database says it is {facts.get(meta.MODE)!r} but "
                                       "no database_init event records its mode (the label "
                                       "is not covered by the trail)")]
    said = json.loads(row.payload)
    said.setdefault(meta.CRYPTO, keys.STANDARD)     # the choice came later: none is standard
    facts.setdefault(meta.CRYPTO, keys.STANDARD)
    wrong = [f"{k} is {facts.get(k)!r} but event {row.seq} recorded {said.get(k)!r}"
             for k in (meta.MODE, meta.DATABASE_ID, meta.CRYPTO) if facts.get(k) != said.get(k)]
    if not wrong:
        return []
    return [Problem("mode", len(wrong), [str(row.seq)],
                    "the database's label was changed behind the engine's back: "
                    + "; ".join(wrong))]


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


def _filtered(stmt: Any, q: Query) -> Any:
    t = _table
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
    return stmt


def count(conn: Connection, q: Query) -> int:
    """How many events match `q` (all pages)."""
    return conn.execute(_filtered(select(func.count()).select_from(_table), q)).scalar() or 0


_FILTERS = (("call_id", "call_id", "="), ("application_id", "application_id", "="),
            ("actor", "actor", "="), ("action", "action", "="), ("since", "at", ">="),
            ("until", "at", "<"))
_QUERIED = tuple(c.name for c in _table.c)
_PAYLOAD, _AT, _WRITTEN = (_QUERIED.index(c) for c in ("payload", "at", "written_at"))


class _Times:
    """psycopg's datetimes of one column as `isoformat(" ")` text, the last one remembered: the
    events of one batch share their time and the time they were written, so a page formats
    a few."""

    __slots__ = ("last", "shown")

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.shown: str | None = None

    def text(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value != self.last:
            self.last, self.shown = value, value.isoformat(sep=" ")
        return self.shown


def page_sql(conn: Connection, q: Query) -> tuple[str, list[Any]]:
    """The SQL `query` runs for `q`, and its parameters.

    Written once per shape of query (which filters, which order, paged or not) and kept.
    On PostgreSQL a page of one application, call or trigger is read off that filter's
    (x, seq) index in order: asked for `x = v ORDER BY seq LIMIT 50`, the planner may walk
    the primary key and filter, reading every older event before the first match (the first
    page of a trigger whose events all come late cost as long as a scan of the trail). As
    `x >= v AND x <= v ORDER BY x, seq` (the same rows) only the (x, seq) index gives the
    order, so the page costs its own 50 rows.
    """
    d = conn.dialect.name
    given = tuple(f for f in _FILTERS if getattr(q, f[0]))
    bound = next((f for f in given if f[0] in _BOUNDED), None) \
        if d == "postgresql" and q.limit is not None else None
    shape = (d, given, bound, q.newest_first, q.limit is not None, bool(q.offset))
    sql = _SQL.get(shape)
    if sql is None:
        sql = _SQL[shape] = _write_sql(d, given, bound, q)
    params: list[Any] = []
    for f in given:
        v = getattr(q, f[0])
        params += (v, v) if f is bound else (_bind_at(conn.dialect)(v) if f[1] == "at" else v,)
    if q.limit is not None:
        params.append(q.limit)
    if q.offset:
        params.append(q.offset)
    return sql, params


_BOUNDED = ("application_id", "call_id", "action")
"""The filters with an (x, seq) index."""


def _write_sql(dialect: str, given: tuple, bound: tuple | None, q: Query) -> str:
    mark = "%s" if dialect == "postgresql" else "?"
    where = [f'"{col}" >= {mark} AND "{col}" <= {mark}' if f is bound else
             f'"{col}" {op} {mark}' for f in given for _, col, op in (f,)]
    desc = " DESC" if q.newest_first else ""
    order = (f'"{bound[1]}"{desc}, ' if bound else "") + f"seq{desc}"
    return (f"SELECT {', '.join(_shown(c, dialect) for c in _QUERIED)} FROM audit_events"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {order}"
            + (f" LIMIT {mark}" if q.limit is not None else "")
            + (f" OFFSET {mark}" if q.offset else ""))


def query(conn: Connection, q: Query) -> list[dict[str, Any]]:
    """Audit events matching `q`, as plain dicts with the payload decoded (a person's sealed
    values opened, or "erased" once their key is gone).

    Read through the raw driver with the SQL of `page_sql`: an auditor's small page (one
    application, one call, one trigger) costs about what the SELECT itself costs, not the
    ORM's per-query work.
    """
    sql, params = page_sql(conn, q)
    cur = bulk.raw_cursor(conn)
    cur.execute(sql, params)
    rows = cur.fetchall()
    cur.close()
    names, scan, out = _QUERIED, _scan, []
    sealed, opener = f'"{sealing.MARK}"', None
    at = written = None
    if conn.dialect.name != "sqlite":    # SQLite gives the times as text already (`_shown`)
        at, written = _Times(), _Times()
    for r in rows:
        row = dict(zip(names, r))
        text = r[_PAYLOAD]
        try:                        # payloads are canonical JSON: the C scanner at once
            value, end = scan(text, 0)
            row["payload"] = value if end == len(text) else json.loads(text)
        except (StopIteration, ValueError):
            row["payload"] = json.loads(text)
        if at is not None:
            row["at"] = at.text(r[_AT])
            row["written_at"] = written.text(r[_WRITTEN])
        if sealed in text:
            opener = opener or sealing.Opener(conn, reading_key(conn))
            row["payload"] = opener.open(row["payload"])
        out.append(row)
    return out


def reading_key(conn: Connection) -> keys.ChainKey | None:
    """The chain key, to open sealed values for a reader; None when this user has none (they
    then read "(sealed ...)" where a person's value is)."""
    try:
        return keys.load_chain_key(meta.read(conn)[meta.DATABASE_ID])
    except (KeyError, keys.NotFound, keys.BadValue):
        return None


def _shown(column: str, dialect: str) -> str:
    """A column as `query` selects it: on SQLite an event time comes as the text
    `datetime.isoformat(" ")` gives (the stored text without ".000000", cut by SQLite)."""
    c = f'"{column}"'
    if dialect == "sqlite" and column in ("at", "written_at"):
        return f"CASE WHEN substr({c}, 20) = '.000000' THEN substr({c}, 1, 19) ELSE {c} END"
    return c


_scan = json.scanner.make_scanner(json.JSONDecoder())


_SQL: dict[tuple, str] = {}


@lru_cache(maxsize=8)
def _bind_at(dialect: Any) -> Any:
    p = _table.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    return p or (lambda v: v)


def as_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["payload"] = json.loads(d["payload"])
    d["at"] = d["at"].isoformat(sep=" ")
    d["written_at"] = d["written_at"].isoformat(sep=" ") if d.get("written_at") else None
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
