"""Anchoring as an act: write a signed anchor, queue it to the auditors, audit it.

Shared by `starfund audit anchor` and the scheduler's daily anchor
(`scheduler run --anchor-dir`); the signing itself is `lifecycle.core.anchors`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from lifecycle.core import anchors, audit, clock
from lifecycle.core.models import Account
from notifications import contexts
from notifications.queue import Message, enqueue


def anchor_now(db: Engine, actor: Any, folder: Path,
               mail_to: list[str] | None) -> tuple[Path, dict, int]:
    """Write an anchor and, unless `mail_to` is None, queue it to those addresses (or to every
    auditor account with an email); the act is audited after the anchored head."""
    with db.begin() as conn:
        path, body = anchors.make(conn, folder)
        queued = 0
        if mail_to is not None:
            to = mail_to or [r.email for r in conn.execute(
                select(Account.email).where(Account.roles.contains("auditor"),
                                            Account.disabled_at.is_(None),
                                            Account.email.is_not(None)))]
            now = clock.now()
            context = contexts.anchor(body, path.name, now)
            queued = enqueue(conn, [Message(contexts.ANCHOR_KIND, "auditor", address, address,
                                            "zh", f"anchor:{body['seq']}:{address}", context)
                                    for address in to], now) if to else 0
        audit.record(conn, actor, [audit.Event("audit_anchor", payload={
            "seq": body["seq"], "hash": body["hash"], "file": path.name, "queued": queued})])
    return path, body, queued
