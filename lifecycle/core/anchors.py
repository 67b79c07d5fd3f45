"""Anchors: the audit chain's head, signed with Ed25519 and kept outside the database.

`starfund audit anchor` writes the current head (sequence number, hash, the wall-clock
time, the database's id and the chain key's fingerprint) as a small JSON file signed
with the database's anchor key (`lifecycle.core.keys`). Whoever holds an anchor and the
public key can later prove that the trail still holds that event with that hash:
truncating the trail, deleting it, or rewriting it consistently (even with the chain
key) changes or removes the anchored event. The signature is `cryptography`'s Ed25519.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core import clock, keys, meta
from lifecycle.core.errors import BadValue
from lifecycle.core.models import AuditEvent, AuditHead

FORMAT = "starfund-anchor/1"
RESTORE = "restore"
"""The action of the event `starfund restore` records: the anchors of events the restored
snapshot did not hold, which the restore acknowledged as lost, are superseded by it."""
SIGNED = ("format", "database", "seq", "hash", "written_at", "chain_key", "mode")
"""The fields the signature covers, in this order."""


def _message(body: dict[str, Any]) -> bytes:
    return json.dumps({k: body[k] for k in SIGNED}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode()


def public_key_text(private: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def make(conn: Connection, folder: Path, anchor_key: str | None = None) -> tuple[Path, dict]:
    """Sign the current head and write it to `folder` as anchor-<seq>-<time>.json."""
    facts = meta.read(conn)
    database = meta.database_id(conn)
    private = keys.load_anchor_key(database, anchor_key)
    chain = keys.load_chain_key(database)
    head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
    if head is None or head.seq == 0:
        raise BadValue("the audit trail is empty: nothing to anchor yet")
    written = clock.wall()
    body = {"format": FORMAT, "database": database, "seq": head.seq, "hash": head.hash,
            "written_at": written.isoformat(sep=" "), "chain_key": chain.id,
            "mode": facts.get(meta.MODE)}
    body["public_key"] = public_key_text(private)
    body["signature"] = base64.b64encode(private.sign(_message(body))).decode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"anchor-{head.seq:010d}-{written:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path, body


@dataclass
class Finding:
    """One anchor checked: its file, the event it anchors, and what is wrong (None: held)."""

    path: Path
    seq: int | None
    problem: str | None
    note: str | None = None
    """Held in another sense: an anchor of events a restore acknowledged as lost."""


def _public(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def verify(conn: Connection, folder: Path, public_key: str) -> list[Finding]:
    """Check every anchor in `folder` against the trail: its signature under `public_key`
    (the auditor's copy, or the operator's own anchor key: never the key an anchor carries,
    which whoever forged it chose), its database, and that the trail still holds its event
    with its hash."""
    from cryptography.exceptions import InvalidSignature

    files = sorted(folder.glob("anchor-*.json"))
    if not files:
        raise BadValue(f"no anchors (anchor-*.json) in {folder}")
    database = meta.read(conn).get(meta.DATABASE_ID)
    try:
        trusted = _public(public_key)
    except (ValueError, TypeError) as e:
        raise BadValue(f"--public-key: not an Ed25519 public key in base64 ({e}); accepted: "
                       "what `starfund audit public-key` prints") from None
    found: list[Finding] = []
    t = AuditEvent.__table__
    superseded = _superseded(conn)
    for path in files:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            trusted.verify(base64.b64decode(body["signature"]), _message(body))
        except InvalidSignature:
            found.append(Finding(path, None, "the signature does not hold (the anchor was "
                                             "edited, or signed by another key)"))
            continue
        except (ValueError, KeyError, TypeError) as e:
            found.append(Finding(path, None, f"not a starfund anchor ({type(e).__name__}: {e})"))
            continue
        seq = int(body["seq"])
        if body["database"] != database:
            found.append(Finding(path, seq, f"anchors database {body['database']}, not this one "
                                            f"({database}): the database was replaced, or its "
                                            "id was changed"))
            continue
        row = conn.execute(select(t.c.hash).where(t.c.seq == seq)).first()
        lost = superseded.get((seq, body["hash"]))
        if lost is not None and (row is None or row.hash != body["hash"]):
            found.append(Finding(path, seq, None, note=(
                f"event {seq} was lost in the restore recorded as event {lost[0]} (from a "
                f"snapshot ending at event {lost[1]}), which acknowledged it")))
        elif row is None:
            found.append(Finding(path, seq, f"event {seq} is no longer in the trail (it was "
                                            "truncated or deleted)"))
        elif row.hash != body["hash"]:
            found.append(Finding(path, seq, f"event {seq} no longer has the anchored hash (the "
                                            "trail was rewritten up to it)"))
        else:
            found.append(Finding(path, seq, None))
    return found


def _superseded(conn: Connection) -> dict[tuple[int, str], tuple[int, int]]:
    """(seq, hash) of each anchor a restore acknowledged as lost -> (the restore event, the
    snapshot's last event). Restores are few: one indexed read. The restore event is in the
    keyed chain, so only whoever holds the chain key could have written one."""
    t = AuditEvent.__table__
    out: dict[tuple[int, str], tuple[int, int]] = {}
    for seq, payload in conn.execute(select(t.c.seq, t.c.payload).where(t.c.action == RESTORE)
                                     .order_by(t.c.seq)):
        try:
            body = json.loads(payload)
            for lost_seq, lost_hash in body.get("superseded_anchors") or []:
                out[(int(lost_seq), str(lost_hash))] = (seq, int(body["snapshot"]["seq"]))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def public_key_of(conn: Connection, anchor_key: str | None = None) -> str:
    """This database's anchor public key (base64), for the auditor to keep apart."""
    return public_key_text(keys.load_anchor_key(meta.database_id(conn), anchor_key))

