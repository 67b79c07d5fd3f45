"""The outbox queue: messages written in the transaction that fires them, once each.

Every row carries a dedupe key, so enqueueing twice (a retried batch, a
scheduler catching up) stores one message. Delivering them after commit is
`notifications.delivery`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from lifecycle.core import bulk, clock
from lifecycle.core.bulk import insert_ignore
from lifecycle.core.models import Notification

_table = Notification.__table__
COLUMNS = ("dedupe_key", "call_id", "application_id", "recipient_kind", "recipient_id",
           "recipient", "kind", "language", "context", "status", "attempts", "last_error",
           "created_at", "next_attempt_at")
"""The outbox columns of `enqueue_rows`' tuples: the message's nine, then `row_tail`'s."""
_TAIL = COLUMNS[9:]

encode = json.JSONEncoder(ensure_ascii=False).encode
"""A message context as the outbox stores it (JSON text)."""


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


HELD = "held"
"""The status of a message waiting for an administrator (`notify outbox`); delivery skips it."""


def enqueue(conn: Connection, messages: list[Message], now: datetime | None = None,
            hold: Callable[[str], bool] | None = None) -> int:
    """Write messages to the outbox in the caller's transaction; duplicates are ignored.

    `hold(kind)` says whether a kind waits for review (the call's `mail.hold`): such
    messages are written `held`, and go only once an administrator releases them.
    """
    now = now or clock.now()
    rows = [{"dedupe_key": m.dedupe_key, "call_id": m.call_id, "application_id": m.application_id,
             "recipient_kind": m.recipient_kind, "recipient_id": m.recipient_id,
             "recipient": m.recipient, "kind": m.kind, "language": m.language,
             "context": m.context, "status": HELD if hold and hold(m.kind) else "pending",
             "attempts": 0, "last_error": "",
             "created_at": now, "next_attempt_at": now} for m in messages]
    insert_ignore(conn, _table, rows, ["dedupe_key"])
    return len(rows)


def row_tail(conn: Connection, now: datetime, status: str = "pending") -> tuple:
    """The columns every new outbox row of a batch shares (pending, or HELD for a kind the
    call holds; no attempt, due now), in the driver's own values: computed once per batch,
    added to each row's tuple."""
    return tuple(bulk.as_tuples(conn, _table, _TAIL, [(status, 0, "", now, now)])[0])


def enqueue_rows(conn: Connection, rows: Iterable[tuple]) -> int:
    """The batch path of `enqueue`: rows already in COLUMNS order and the driver's values
    (each context `encode`d, each row ending in `row_tail`), a list or a generator (read
    as it is written: lifecycle.core.bulk); duplicates are ignored. Returns the rows given."""
    return bulk.insert_ready_ignore(conn, _table, COLUMNS, rows, ["dedupe_key"])
