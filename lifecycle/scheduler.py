"""Deadlines as rows. Scheduler jobs are derived from these rows and can be rebuilt at any time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from lifecycle import clock
from lifecycle.db import insert_ignore
from lifecycle.models import Deadline

_table = Deadline.__table__


@dataclass
class DeadlineRow:
    call_id: str
    kind: str
    due_at: datetime
    fires: str
    action: str = "advance"
    application_id: str | None = None

    @property
    def key(self) -> str:
        parts = [self.call_id, self.kind] + ([self.application_id] if self.application_id else [])
        return ":".join(parts)


def schedule(conn: Connection, rows: list[DeadlineRow]) -> None:
    """Write deadlines in the caller's transaction; one already scheduled is left as it is."""
    now = clock.now()
    insert_ignore(conn, _table, [
        {"key": r.key, "call_id": r.call_id, "application_id": r.application_id, "kind": r.kind,
         "action": r.action, "fires": r.fires, "due_at": r.due_at, "fired_at": None,
         "attempts": 0, "last_error": "", "created_at": now} for r in rows], ["key"])
