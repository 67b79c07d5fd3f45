"""The outbox queue: messages written in the transaction that fires them, once each.

Every row carries a dedupe key, so enqueueing twice (a retried batch, a
scheduler catching up) stores one message. Delivering them after commit is
`notifications.delivery`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from lifecycle.core import clock
from lifecycle.core.bulk import insert_ignore
from lifecycle.core.models import Notification

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
             "context": m.context, "status": HELD if hold and hold(m.kind) else "pending", "attempts": 0, "last_error": "",
             "created_at": now, "next_attempt_at": now} for m in messages]
    insert_ignore(conn, _table, rows, ["dedupe_key"])
    return len(rows)
