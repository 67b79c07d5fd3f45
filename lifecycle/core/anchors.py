"""Anchors: the audit chain's head, signed (Ed25519, or SM2) and kept outside the database.

`starfund audit anchor` writes the current head (sequence number, hash, the wall-clock
time, the database's id and the chain key's fingerprint) as a small JSON file signed
with the database's anchor key (`lifecycle.core.keys`). Whoever holds an anchor and the
public key can later prove that the trail still holds that event with that hash:
truncating the trail, deleting it, or rewriting it consistently (even with the chain
key) changes or removes the anchored event. The signature is `cryptography`'s Ed25519,
or SM2 (`lifecycle.core.sm2`) on a database made with `init --crypto sm`.

Two formats. "starfund-anchor/1" is Ed25519's, exactly as before the choice (every anchor
written so far still verifies, and a standard database still writes them). An SM2 anchor is
"starfund-anchor/2", whose signed fields add "alg": the algorithm is then part of what is
signed, not a label beside it, and the format names the list of signed fields, so a reader
never has to guess which list an anchor's signature covers (an older release refuses a /2
anchor instead of misreading it). A verifier takes the algorithm from the key it trusts
(the auditor's copy, or the operator's own key file), never from the anchor: an anchor of
another algorithm than that key's is a finding, not a reason to check it otherwise.
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
"""The fields an Ed25519 anchor's signature covers (FORMAT)."""
FORMAT_2 = "starfund-anchor/2"
SIGNED_2 = (*SIGNED, "alg")
"""The fields a FORMAT_2 anchor's signature covers: the algorithm too."""
_FORMATS = {FORMAT: SIGNED, FORMAT_2: SIGNED_2}
_NAMES = {"ed25519": "Ed25519", "sm2": "SM2"}


def _message(body: dict[str, Any]) -> bytes:
    return json.dumps({k: body[k] for k in _FORMATS[body["format"]]}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":")).encode()


def _alg(private: Any) -> str:
    """ed25519 or sm2: the algorithm of a signing key `keys.load_anchor_key` gave."""
    from lifecycle.core import sm2

    return "sm2" if isinstance(private, sm2.PrivateKey) else "ed25519"


def public_key_text(private: Any) -> str:
    """The public half of an anchor key, base64 of its raw bytes (Ed25519: 32; SM2: the
    65-byte point 04 || x || y)."""
    if _alg(private) == "sm2":
        return base64.b64encode(private.public_key().raw).decode()
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
    alg, wanted = _alg(private), keys.crypto(facts.get(meta.CRYPTO)).signature
    if alg != wanted or chain.crypto != (facts.get(meta.CRYPTO) or keys.STANDARD):
        raise BadValue(f"this database is crypto {facts.get(meta.CRYPTO) or keys.STANDARD}: its "
                       f"anchors are signed with {_NAMES[wanted]} under its own chain key, but "
                       f"the anchor key is {_NAMES[alg]} and the chain key says crypto "
                       f"{chain.crypto}: not this database's keys; nothing was anchored")
    head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
    if head is None or head.seq == 0:
        raise BadValue("the audit trail is empty: nothing to anchor yet")
    written = clock.wall()
    body = {"format": FORMAT, "database": database, "seq": head.seq, "hash": head.hash,
            "written_at": written.isoformat(sep=" "), "chain_key": chain.id,
            "mode": facts.get(meta.MODE)}
    if alg != "ed25519":
        body.update(format=FORMAT_2, alg=alg)
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


def _public(text: str) -> tuple[str, Any]:
    """(ed25519 or sm2, the key) of a public key as `public_key_text` writes it: the
    algorithm is the key's own (its length), never an anchor's say."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from lifecycle.core import sm2

    raw = base64.b64decode(text, validate=True)
    if len(raw) == 65:
        return "sm2", sm2.PublicKey(raw)
    return "ed25519", Ed25519PublicKey.from_public_bytes(raw)


def verify(conn: Connection, folder: Path, public_key: str,
           crypto: str | None = None) -> list[Finding]:
    """Check every anchor in `folder` against the trail: its signature under `public_key`
    (the auditor's copy, or the operator's own anchor key: never the key an anchor carries,
    which whoever forged it chose), its database, and that the trail still holds its event
    with its hash. `crypto`, when given, is the database's (`keys.CRYPTOS`): a public key of
    another algorithm is refused before anything is read."""
    from cryptography.exceptions import InvalidSignature

    from lifecycle.core import sm2

    files = sorted(folder.glob("anchor-*.json"))
    if not files:
        raise BadValue(f"no anchors (anchor-*.json) in {folder}")
    database = meta.read(conn).get(meta.DATABASE_ID)
    try:
        alg, trusted = _public(public_key)
    except (ValueError, TypeError, BadValue) as e:
        raise BadValue(f"--public-key: not an Ed25519 or SM2 public key in base64 ({e}); "
                       "accepted: what `starfund audit public-key` prints") from None
    if crypto is not None and keys.crypto(crypto).signature != alg:
        wanted = keys.crypto(crypto).signature
        raise BadValue(f"the anchor public key to trust is {_NAMES[alg]}, but this database is "
                       f"crypto {crypto}: its anchors are signed with {_NAMES[wanted]}; give "
                       "its own public key (`starfund audit public-key`)")
    found: list[Finding] = []
    t = AuditEvent.__table__
    superseded = _superseded(conn)
    for path in files:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if body["format"] not in _FORMATS:
                raise ValueError(f"unknown format {body['format']!r}")
            signed = "ed25519" if body["format"] == FORMAT else body["alg"]
            if signed != alg:
                found.append(Finding(path, None, f"signed with {signed!r}, not with the "
                                                 f"{_NAMES[alg]} key to trust"))
                continue
            trusted.verify(base64.b64decode(body["signature"]), _message(body))
        except (InvalidSignature, sm2.InvalidSignature):
            found.append(Finding(path, None, "the signature does not hold (the anchor was "
                                             "edited, or signed by another key)"))
            continue
        except (ValueError, KeyError, TypeError, AttributeError) as e:
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

