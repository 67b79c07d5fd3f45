"""Tampering with the trail behind the engine's back, each way found by `starfund audit verify`
(exit 1, the right problem named): edits rehashed without the key, a cut tail with its head
moved back, the whole trail gone, data changed or added without events, back-dated and
reordered events, a replaced key file; and, with anchors, what even the chain key's thief
cannot hide: truncation, deletion and a consistent rewrite. Tampering is plain SQL through
SQLAlchemy, as anyone who can write to the database could do it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from worlds import (
    AUDITOR,
    CALL,
    EXAMPLE_CALL,
    Cli,
    applications,
    audit_rows,
    fingerprint,
    shared_world,
    societies,
    write_csv,
)

from lifecycle.core import audit, keys, meta
from lifecycle.core.db import make_engine
from lifecycle.core.models import Application, AuditEvent, AuditHead, Meta

EVENTS, HEAD = AuditEvent.__table__, AuditHead.__table__


def build_trail(cli: Cli, tmp_path: Path) -> Cli:
    """A call with three submitted applications, then two account acts that move no
    application (so cutting them off shows only in the chain's head)."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(3)), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(3, per_society=1)), now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("user", "add", "clerk-1", "--role", "officer", now="2025-03-21")
    cli("user", "add", "clerk-2", "--role", "officer", now="2025-03-22")
    return cli


TAMPERED = (EVENTS, HEAD, Meta.__table__)
"""The tables a test here may change (besides applications); restored after each test."""


def snapshot(db: str) -> dict[str, list[dict]]:
    e = make_engine(db)
    try:
        with e.connect() as conn:
            return {t.name: [dict(r._mapping) for r in conn.execute(select(t))]
                    for t in (*TAMPERED, Application.__table__)}
    finally:
        e.dispose()


def restore(db: str, saved: dict[str, list[dict]]) -> None:
    """Put the tampered tables back as `saved` (applications row by row: others refer to them)."""
    apps = Application.__table__

    def put_back(conn):
        for t in TAMPERED:
            conn.execute(delete(t))
            conn.execute(insert(t), saved[t.name])
        ids = [r["id"] for r in saved[apps.name]]
        conn.execute(delete(apps).where(apps.c.id.not_in(ids)))
        for r in saved[apps.name]:
            conn.execute(update(apps).where(apps.c.id == r["id"]).values(r))

    tamper(db, put_back)


@pytest.fixture(scope="module")
def _one_trail(tmp_path_factory):
    """The trail, built once for the module (a world per test would cost a second or more
    each on PostgreSQL): (the world, its fingerprint, its rows, its key file's bytes)."""
    folder = tmp_path_factory.mktemp("tamper")
    with shared_world(folder) as cli:
        build_trail(cli, folder)
        key = chain_key(cli)
        yield cli, fingerprint(cli.db), snapshot(cli.db), key.path, key.path.read_bytes()


@pytest.fixture
def trail(_one_trail) -> Cli:
    """The module's trail, as it was built; put back after the test, checked whole."""
    cli, whole, saved, key_path, key_bytes = _one_trail
    yield cli
    restore(cli.db, saved)
    if key_path.read_bytes() != key_bytes:
        key_path.unlink()
        keys.write_private(key_path, key_bytes)
    assert fingerprint(cli.db) == whole, "a test changed a table restore() does not put back"


def verify(cli: Cli, *extra: Any) -> tuple[int, str, dict]:
    """`audit verify` by the auditor: (exit code, its text, its JSON report)."""
    r = cli("audit", "verify", *extra, ok=False, actor=AUDITOR)
    j = cli("audit", "verify", "--json", *extra, ok=False, actor=AUDITOR)
    assert j.exit_code == r.exit_code and "Traceback" not in r.output
    return r.exit_code, r.output, json.loads(j.output)


def problems(report: dict) -> dict[str, dict]:
    return {p["check"]: p for p in report["problems"]}


def seq_of(db: str, **where: Any) -> int:
    return audit_rows(db, **where)[-1].seq


def last_seq(db: str) -> int:
    return audit_rows(db)[-1].seq


def chain_key(cli: Cli) -> keys.ChainKey:
    """The real chain key, read from its file in the operator's config folder (what a key
    thief would hold)."""
    e = make_engine(cli.db)
    try:
        with e.connect() as conn:
            database = meta.database_id(conn)
    finally:
        e.dispose()
    return keys.load_chain_key(database, cli.config / "keys" / f"{database}{keys.CHAIN}")


# --- forging: recompute the chain as a tamperer would --------------------------------------

Digest = Callable[[Any, str], str]
"""An event row and the previous hash -> the hash a forger gives it."""


def keyed_text(r: Any, prev: str) -> str:
    """The text an event's keyed hash covers (the layout of lifecycle.core.audit)."""
    return "\x1f".join([prev, str(r.seq), r.at.isoformat(sep=" "),
                        r.written_at.isoformat(sep=" "), r.actor, r.by or "", r.action,
                        r.call_id or "", r.application_id or "", r.from_state or "",
                        r.to_state or "", r.payload])


def hmac_with(secret: bytes, hash_name: str = "sha256") -> Digest:
    return lambda r, prev: audit._keyed_digest(
        secret, prev, r.seq, r.at.isoformat(sep=" "), r.written_at.isoformat(sep=" "), r.actor,
        r.by, r.action, r.call_id, r.application_id, r.from_state, r.to_state, r.payload,
        hash_name)


def plain_sha256(r: Any, prev: str) -> str:
    return hashlib.sha256(keyed_text(r, prev).encode()).hexdigest()


def as_unkeyed(r: Any, prev: str) -> str:
    """The plain SHA-256 of events older than the keyed chain (their written_at is NULL)."""
    return audit._plain_digest(prev, r.seq, r.at.isoformat(sep=" "), r.actor, r.action,
                               r.call_id, r.application_id, r.from_state, r.to_state, r.payload)


def rechain(conn: Any, digest: Digest, head_secret: bytes | None, start: int = 1,
            hash_name: str = "sha256") -> None:
    """Recompute the prev_hash and hash of every event from `start` on with `digest` (the
    earlier ones keep theirs), and point the head at the last event (its MAC under
    `head_secret` with `hash_name`, or the old MAC kept when None)."""
    prev = conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == start - 1)).scalar() \
        or audit.GENESIS
    rows = conn.execute(select(EVENTS).where(EVENTS.c.seq >= start)
                        .order_by(EVENTS.c.seq)).all()
    for r in rows:
        digest_ = digest(r, prev)
        conn.execute(update(EVENTS).where(EVENTS.c.seq == r.seq)
                     .values(prev_hash=prev, hash=digest_))
        prev = digest_
    rewind(conn, rows[-1].seq, prev, head_secret, hash_name)


def rewind(conn: Any, seq: int, digest: str, head_secret: bytes | None,
           hash_name: str = "sha256") -> None:
    values: dict[str, Any] = {"seq": seq, "hash": digest}
    if head_secret is not None:
        values["mac"] = audit.head_mac(head_secret, seq, digest, hash_name)
    conn.execute(update(HEAD).where(HEAD.c.id == 1).values(**values))


def tamper(db: str, fn: Callable[[Any], None]) -> None:
    """Run `fn(conn)` in one transaction on the database, behind the engine's back."""
    e = make_engine(db)
    try:
        with e.begin() as conn:
            fn(conn)
    finally:
        e.dispose()


def cut_after(conn: Any, seq: int, head_secret: bytes | None) -> None:
    """Delete the events after `seq` and move the head back to it."""
    digest = conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == seq)).scalar_one()
    conn.execute(delete(EVENTS).where(EVENTS.c.seq > seq))
    rewind(conn, seq, digest, head_secret)


def fresh_key() -> bytes:
    return secrets.token_bytes(32)


# --- without the key -----------------------------------------------------------------------

def test_the_untouched_trail_verifies(trail):
    code, out, report = verify(trail)
    assert code == 0 and report["ok"] and report["keyed"], out
    assert report["checked"] == last_seq(trail.db)


@pytest.mark.parametrize("forgery", ["fresh random key", "plain SHA-256", "unkeyed events"])
def test_an_edit_rechained_without_the_key(trail, forgery):
    edited = seq_of(trail.db, action="submit")

    def forge(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="someone-else"))
        if forgery == "fresh random key":
            secret = fresh_key()
            rechain(conn, hmac_with(secret), secret, start=edited)
        elif forgery == "plain SHA-256":
            rechain(conn, plain_sha256, None, start=edited)
        else:  # pass every event off as older than the keyed chain, and say so in meta
            conn.execute(update(EVENTS).values(written_at=None))
            conn.execute(update(Meta).where(Meta.key == meta.KEYED_FROM).values(value="999999"))
            rechain(conn, as_unkeyed, None)

    tamper(trail.db, forge)
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert "chain" in found, report["problems"]
    first = 1 if forgery == "unkeyed events" else edited
    assert report["broken_at"] == first
    assert f"audit chain BROKEN at event {first}" in out
    if forgery == "unkeyed events":
        assert "a keyed event without the time it was written" in out
    else:
        assert "contents do not match the event's keyed hash" in out
        assert found["chain"]["count"] == last_seq(trail.db) - edited + 1
    assert "head" in found, "the head's MAC cannot be forged without the key"


@pytest.mark.parametrize("mac", ["kept", "forged"])
def test_a_cut_tail_with_its_head_moved_back(trail, mac):
    """The two account events deleted, the head moved to the event before them (its MAC
    kept, or recomputed with a key that is not the chain's): only the head can tell."""
    last = last_seq(trail.db)
    tamper(trail.db, lambda conn: cut_after(conn, last - 2, None if mac == "kept"
                                            else fresh_key()))
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert set(found) == {"head"}, report["problems"]
    assert f"audit chain BROKEN at event {last - 2}" in out
    assert "does not carry its keyed MAC" in out


def test_the_whole_trail_deleted(trail):
    tamper(trail.db, lambda conn: (conn.execute(delete(EVENTS)), conn.execute(delete(HEAD))))
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert {"empty", "creation", "mode"} <= set(found), report["problems"]
    assert "the audit trail is empty but the database holds 3 application(s)" in out
    assert found["creation"]["count"] == 3
    assert "no database_init event records its mode" in out


def test_a_state_changed_without_an_event(trail):
    tamper(trail.db, lambda conn: conn.execute(
        update(Application).where(Application.id == "A0002").values(state="eligible")))
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert set(found) == {"state"}, report["problems"]
    assert found["state"]["first"] == ["A0002"]
    assert "A0002 is eligible, event" in out and "left it declared" in out


def test_an_application_inserted_without_an_event(trail):
    table = Application.__table__

    def forge(conn):
        row = dict(conn.execute(select(table).where(table.c.id == "A0001")).one()._mapping)
        conn.execute(insert(table).values({**row, "id": "X0001", "title": "forged"}))

    tamper(trail.db, forge)
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert set(found) == {"creation"}, report["problems"]
    assert found["creation"]["first"] == ["X0001"]
    assert "1 application(s) without a creation event" in out


def test_a_back_dated_event(trail):
    moved = seq_of(trail.db, action="submit", application_id="A0003")

    def back_date(conn):
        at = conn.execute(select(EVENTS.c.at).where(EVENTS.c.seq == moved)).scalar_one()
        conn.execute(update(EVENTS).where(EVENTS.c.seq == moved)
                     .values(at=at - timedelta(days=30)))

    tamper(trail.db, back_date)
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert set(found) == {"chain"}, report["problems"]
    assert found["chain"]["count"] == 1 and found["chain"]["first"] == [str(moved)]
    assert f"audit chain BROKEN at event {moved}: contents do not match" in out


def test_two_events_swapped(trail):
    a = seq_of(trail.db, action="submit", application_id="A0001")
    b = a + 1

    def swap(conn):
        for old, new in ((a, -1), (b, a), (-1, b)):
            conn.execute(update(EVENTS).where(EVENTS.c.seq == old).values(seq=new))

    tamper(trail.db, swap)
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert "chain" in found, report["problems"]
    assert report["broken_at"] == a and f"audit chain BROKEN at event {a}" in out


def test_a_replaced_key_file(trail):
    """A new key for the same database, where the old one was: every event fails."""
    real = chain_key(trail)
    real.path.unlink()
    keys.write_private(real.path, json.dumps({
        "database": real.database, "first_seq": real.first_seq,
        "key": base64.b64encode(fresh_key()).decode()}).encode())
    code, out, report = verify(trail)
    assert code == 1
    found = problems(report)
    assert {"chain", "head"} <= set(found), report["problems"]
    assert found["chain"]["count"] == report["checked"] == last_seq(trail.db)
    assert "audit chain BROKEN at event 1" in out and "not this trail's key" in out


# --- with anchors: what the key's thief cannot hide -----------------------------------------

@pytest.fixture
def anchored(trail, tmp_path) -> tuple[Cli, Path, int]:
    """The trail anchored by the auditor: (the world, the anchors' folder, the anchored seq)."""
    folder = tmp_path / "anchors"
    r = trail("audit", "anchor", "--dir", folder, "--no-mail", "--json", actor=AUDITOR)
    seq = json.loads(r.output)["seq"]
    assert seq == last_seq(trail.db) - 1  # the anchor act itself is audited after the head
    code, out, report = verify(trail, "--anchors", folder)
    assert code == 0 and "anchors: 1 of 1 held" in out, out
    return trail, folder, seq


def anchor_problem(cli: Cli, folder: Path, unkeyed: bool, *extra: Any) -> tuple[dict, str]:
    """verify --anchors (keyed or not): exit 1, and (the report, the one anchor's problem)."""
    code, out, report = verify(cli, "--anchors", folder, *extra,
                               *(["--unkeyed"] if unkeyed else []))
    assert code == 1, out
    assert report["keyed"] is (not unkeyed)
    (finding,) = report["anchors"]
    assert finding["problem"], report
    assert "anchors: 0 of 1 held" in out
    return report, finding["problem"]


@pytest.mark.parametrize("unkeyed", [False, True], ids=["keyed", "unkeyed"])
def test_anchors_find_a_truncation_even_with_the_head_mac_forged(anchored, unkeyed):
    cli, folder, seq = anchored
    secret = chain_key(cli).secret
    tamper(cli.db, lambda conn: cut_after(conn, seq - 2, secret))
    report, problem = anchor_problem(cli, folder, unkeyed)
    assert report["problems"] == [], "with the key, the cut is otherwise invisible"
    assert f"event {seq} is no longer in the trail" in problem


@pytest.mark.parametrize("unkeyed", [False, True], ids=["keyed", "unkeyed"])
def test_anchors_find_a_deleted_trail(anchored, unkeyed):
    cli, folder, seq = anchored
    tamper(cli.db, lambda conn: (conn.execute(delete(EVENTS)), conn.execute(delete(HEAD))))
    report, problem = anchor_problem(cli, folder, unkeyed)
    assert f"event {seq} is no longer in the trail" in problem
    assert {"empty", "creation"} <= set(problems(report))


@pytest.mark.parametrize("unkeyed", [False, True], ids=["keyed", "unkeyed"])
def test_anchors_find_a_consistent_rewrite_with_the_real_key(anchored, unkeyed):
    """A key thief edits an early event and recomputes every HMAC and the head's MAC with the
    key from the key file: the chain verifies, the anchored hash is gone."""
    cli, folder, seq = anchored
    secret = chain_key(cli).secret
    edited = seq_of(cli.db, action="submit", application_id="A0002")

    def rewrite(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="someone-else"))
        rechain(conn, hmac_with(secret), secret, start=edited)

    tamper(cli.db, rewrite)
    assert audit_rows(cli.db, seq=edited)[0].actor == "someone-else"
    report, problem = anchor_problem(cli, folder, unkeyed)
    assert report["problems"] == [], "a rewrite with the real key passes the chain check"
    assert f"event {seq} no longer has the anchored hash" in problem


def test_an_edited_anchor_fails_its_signature(anchored):
    cli, folder, seq = anchored
    public = cli("audit", "public-key", actor=AUDITOR).output.strip()
    (path,) = folder.glob("anchor-*.json")
    body = json.loads(path.read_text())
    body["seq"] = seq - 1
    body["hash"] = audit_rows(cli.db, seq=seq - 1)[0].hash  # true of the trail, but not signed
    path.write_text(json.dumps(body))
    for extra in ((), ("--public-key", public)):
        report, problem = anchor_problem(cli, folder, False, *extra)
        assert report["problems"] == []
        assert "the signature does not hold" in problem


def test_an_anchor_re_signed_by_the_thief_fails_under_the_auditors_public_key(anchored):
    """After a rewrite, the thief re-signs the anchor with a key of its own: only the
    auditor's copy of the public key (--public-key) tells the forgery apart."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lifecycle.core import anchors

    cli, folder, seq = anchored
    public = cli("audit", "public-key", actor=AUDITOR).output.strip()
    secret = chain_key(cli).secret
    edited = seq_of(cli.db, action="submit", application_id="A0002")

    def rewrite(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="someone-else"))
        rechain(conn, hmac_with(secret), secret, start=edited)

    tamper(cli.db, rewrite)
    (path,) = folder.glob("anchor-*.json")
    body = json.loads(path.read_text())
    body["hash"] = audit_rows(cli.db, seq=seq)[0].hash
    thief = Ed25519PrivateKey.generate()
    body["public_key"] = anchors.public_key_text(thief)
    body["signature"] = base64.b64encode(thief.sign(anchors._message(body))).decode()
    path.write_text(json.dumps(body))
    report, problem = anchor_problem(cli, folder, False, "--public-key", public)
    assert report["problems"] == [] and "the signature does not hold" in problem
    # without --public-key, verify trusts the database's own anchor key, not the anchor's
    report, problem = anchor_problem(cli, folder, False)
    assert report["problems"] == [] and "the signature does not hold" in problem


# --- nothing in the database decides how it is checked (issue 29) ---------------------------

def test_the_database_cannot_point_verify_at_no_key(anchored):
    """An edited event and the meta row naming a key that is not there: the auditor's own
    command still checks with the key from the config folder, and finds the edit."""
    cli, folder, seq = anchored
    public = cli("audit", "public-key", actor=AUDITOR).output.strip()
    edited = seq_of(cli.db, action="submit", application_id="A0001")
    tamper(cli.db, lambda conn: (
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="mallory")),
        conn.execute(update(Meta).where(Meta.key == meta.CHAIN_KEY)
                     .values(value="/nonexistent.key"))))
    code, out, report = verify(cli, "--anchors", folder, "--public-key", public)
    assert code == 1, out
    assert report["keyed"] and "UNKEYED" not in out
    assert f"audit chain BROKEN at event {edited}: contents do not match" in out


def test_the_database_cannot_name_a_forged_key(trail, tmp_path):
    """The meta row pointed at a key file made for this database (its id, another secret),
    the trail rewritten under it: verify uses the operator's key, not the one named."""
    real = chain_key(trail)
    forged_secret = fresh_key()
    forged = tmp_path / "forged.key"
    keys.write_private(forged, json.dumps({
        "database": real.database, "first_seq": real.first_seq,
        "key": base64.b64encode(forged_secret).decode()}).encode())
    edited = seq_of(trail.db, action="submit")

    def forge(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="mallory"))
        rechain(conn, hmac_with(forged_secret), forged_secret, start=edited)
        conn.execute(update(Meta).where(Meta.key == meta.CHAIN_KEY).values(value=str(forged)))

    tamper(trail.db, forge)
    code, out, report = verify(trail)
    assert code == 1 and report["keyed"], out
    assert {"chain", "head"} <= set(problems(report)), report["problems"]


@pytest.mark.parametrize("how", ["--key-file", "STARFUND_AUDIT_KEY"])
def test_a_named_key_that_is_missing_is_an_error(trail, tmp_path, monkeypatch, how):
    missing = tmp_path / "missing.key"
    extra: tuple[Any, ...] = ("--key-file", missing) if how == "--key-file" else ()
    if how == "STARFUND_AUDIT_KEY":
        monkeypatch.setenv(how, str(missing))
    r = trail("audit", "verify", *extra, ok=False, actor=AUDITOR)
    assert r.exit_code == 1, r.output
    assert f"no audit chain key at {missing} (named by {how})" in r.output
    assert "--unkeyed" in r.output and "intact" not in r.output


def test_a_check_without_the_key_is_only_asked_for_and_says_it_proves_less(trail):
    real = chain_key(trail)
    code, out, report = verify(trail, "--unkeyed")
    assert code == 3 and report["ok"] and not report["keyed"], out
    assert "UNKEYED" in out and "as far as an UNKEYED check sees" in out
    moved = real.path.with_name("elsewhere.key")
    real.path.rename(moved)
    try:
        r = trail("audit", "verify", ok=False, actor=AUDITOR)
        assert r.exit_code == 1 and f"no audit chain key at {real.path}" in r.output, r.output
        assert "intact" not in r.output
        r = trail("audit", "verify", "--key-file", moved, ok=False, actor=AUDITOR)
        assert r.exit_code == 0 and "audit chain intact: " in r.output, r.output
    finally:
        moved.rename(real.path)


def test_the_database_cannot_point_verify_at_the_anchors_own_key(anchored):
    """A key thief rewrites the trail, re-signs the anchor with a key of its own and points
    the anchor-key row away: without --public-key verify trusts the operator's anchor key
    file, never the anchor's; with neither at hand it refuses to guess."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lifecycle.core import anchors

    cli, folder, seq = anchored
    secret = chain_key(cli).secret
    edited = seq_of(cli.db, action="submit", application_id="A0002")

    def rewrite(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="someone-else"))
        rechain(conn, hmac_with(secret), secret, start=edited)
        conn.execute(update(Meta).where(Meta.key == meta.ANCHOR_KEY)
                     .values(value="/nonexistent.pem"))

    tamper(cli.db, rewrite)
    thief = Ed25519PrivateKey.generate()
    for path in [*folder.glob("anchor-*.json"), folder / "anchor-0000000099-x.json"]:
        body = json.loads(next(folder.glob("anchor-*.json")).read_text())
        body["hash"] = audit_rows(cli.db, seq=seq)[0].hash
        body["public_key"] = anchors.public_key_text(thief)
        body["signature"] = base64.b64encode(thief.sign(anchors._message(body))).decode()
        path.write_text(json.dumps(body))
    code, out, report = verify(cli, "--anchors", folder)
    assert code == 1 and "anchors: 0 of 2 held" in out, out
    assert all("the signature does not hold" in a["problem"] for a in report["anchors"])
    own = cli.config / "keys" / f"{chain_key(cli).database}{keys.ANCHOR}"
    moved = own.with_name("away.pem")
    own.rename(moved)
    try:
        r = cli("audit", "verify", "--anchors", folder, ok=False, actor=AUDITOR)
        assert r.exit_code == 1 and "no anchor public key to trust" in r.output, r.output
        assert "held" not in r.output
    finally:
        moved.rename(own)


def test_a_forged_key_with_the_same_id_writes_nothing(trail):
    """A key file for this database (its id) with another secret: the first write finds
    that it does not verify the chain's head, and writes nothing."""
    real = chain_key(trail)
    real.path.unlink()
    keys.write_private(real.path, json.dumps({
        "database": real.database, "first_seq": real.first_seq,
        "key": base64.b64encode(fresh_key()).decode()}).encode())
    before = fingerprint(trail.db)
    r = trail("user", "add", "clerk-3", "--role", "officer", ok=False)
    assert r.exit_code == 1, r.output
    assert "does not verify the chain's head" in r.output and "nothing was written" in r.output
    assert fingerprint(trail.db) == before
