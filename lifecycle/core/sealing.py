"""Personal values in the audit trail, sealed under one key per person, erased by destroying it.

The trail must prove what happened and still forget a person (PIPL, invariant 11). So an
event's personal values (the register, `lifecycle.core.personal`, names which) are written
into its payload as a sealed box, `{"$sealed": subject, "box": base64}`: AES-256-GCM under the
subject's own random key, the subject as associated data. The event's keyed hash covers the
box, not the value. `person erase` deletes the subject's key row: every box of that person
becomes unreadable at once, and no hashed byte changes, so the chain and its anchors verify
as before.

A subject's key is kept in `subject_keys` wrapped (AES-GCM again) under a key derived from
the chain key, which lives outside the database (`lifecycle.core.keys`): a copy of the
database alone does not open the boxes, and reading them back needs the same key file as
writing the trail does.
"""
from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from lifecycle.core import clock, keys
from lifecycle.core.models import SubjectKey

MARK = "$sealed"
"""The key of a sealed box in a payload."""
ERASED = "已删除/erased"
"""What pages and exports show where an erased value was."""
UNREADABLE = "(sealed: the audit key is needed to read it)"
"""What a reader without the chain key sees where a sealed value is."""
_NONCE = 12


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _kek(chain: keys.ChainKey) -> Any:
    """The key that wraps subject keys: derived from the chain key (domain-separated)."""
    return _aead(hmac.digest(chain.secret, b"starfund subject keys/1", "sha256"))


def _box(aead: Any, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + aead.encrypt(nonce, data, aad)


def _unbox(aead: Any, boxed: bytes, aad: bytes) -> bytes:
    return aead.decrypt(boxed[:_NONCE], boxed[_NONCE:], aad)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and MARK in value


class Sealer:
    """Seals values for one transaction, making a subject's key the first time it is needed
    (concurrent writers of the same new subject agree on one row: insert-or-ignore, re-read)."""

    def __init__(self, conn: Connection, chain: keys.ChainKey) -> None:
        self.conn, self.kek = conn, _kek(chain)
        self.boxes: dict[str, Any] = {}

    def _subject(self, subject: str) -> Any:
        aead = self.boxes.get(subject)
        if aead is None:
            aead = self.boxes[subject] = _aead(self._key(subject))
        return aead

    def _key(self, subject: str) -> bytes:
        aad = b"subject:" + subject.encode()
        row = self.conn.execute(select(SubjectKey.wrapped)
                                .where(SubjectKey.subject == subject)).scalar()
        if row is None:
            fresh = os.urandom(32)
            dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
            self.conn.execute(dialect.insert(SubjectKey).values(
                subject=subject, wrapped=_box(self.kek, fresh, aad), created_at=clock.wall())
                .on_conflict_do_nothing())
            row = self.conn.execute(select(SubjectKey.wrapped)
                                    .where(SubjectKey.subject == subject)).scalar_one()
        return _unbox(self.kek, row, aad)

    def seal(self, subject: str, value: Any) -> Any:
        """`value` as a sealed box of `subject` (None and "" stay as they are: nothing to hide)."""
        if value is None or value == "" or is_sealed(value):
            return value
        text = value if isinstance(value, str) else str(value)
        boxed = _box(self._subject(subject), text.encode("utf-8"), subject.encode())
        return {MARK: subject, "box": base64.b64encode(boxed).decode()}

    def seal_fields(self, subject: str, payload: dict[str, Any],
                    fields: Iterable[str]) -> dict[str, Any]:
        """A copy of `payload` with `fields` sealed as `subject`'s ("a.b": a field of the
        dict in "a")."""
        out = dict(payload)
        for f in fields:
            head, _, rest = f.partition(".")
            if rest and isinstance(out.get(head), dict):
                out[head] = self.seal_fields(subject, out[head], [rest])
            elif not rest and f in out:
                out[f] = self.seal(subject, out[f])
        return out


class Opener:
    """Opens sealed values for reading (pages, exports, `audit query`): the clear value, ERASED
    once the subject was erased, UNREADABLE without the chain key."""

    def __init__(self, conn: Connection, chain: keys.ChainKey | None) -> None:
        self.conn = conn
        self.kek = _kek(chain) if chain is not None else None
        self.boxes: dict[str, Any] = {}

    def _subject(self, subject: str) -> Any:
        if subject not in self.boxes:
            wrapped = self.conn.execute(select(SubjectKey.wrapped)
                                        .where(SubjectKey.subject == subject)).scalar()
            self.boxes[subject] = None if wrapped is None else \
                _aead(_unbox(self.kek, wrapped, b"subject:" + subject.encode()))
        return self.boxes[subject]

    def value(self, sealed: dict[str, Any]) -> str:
        if self.kek is None:
            return UNREADABLE
        subject = str(sealed.get(MARK))
        aead = self._subject(subject)
        if aead is None:
            return ERASED
        return _unbox(aead, base64.b64decode(sealed["box"]), subject.encode()).decode("utf-8")

    def open(self, value: Any) -> Any:
        """`value` (a payload, or any part of one) with every sealed box opened."""
        if isinstance(value, dict):
            if MARK in value:
                return self.value(value)
            return {k: self.open(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.open(v) for v in value]
        return value


def subjects_in(value: Any) -> set[str]:
    """The subjects whose sealed boxes `value` holds."""
    if isinstance(value, dict):
        if MARK in value:
            return {str(value[MARK])}
        return set().union(*(subjects_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(subjects_in(v) for v in value)) if value else set()
    return set()


def destroy(conn: Connection, subjects: Iterable[str]) -> int:
    """Delete the subjects' keys: their sealed values are erased everywhere at once."""
    wanted = sorted(set(subjects))
    if not wanted:
        return 0
    return conn.execute(delete(SubjectKey).where(SubjectKey.subject.in_(wanted))).rowcount or 0
