"""Consent to the portal's processing rules (个人信息处理规则, PIPL arts. 13-17): who agreed to
which version, when, and through which door.

A society's contact and an expert are outside people whose data the 科协 processes on their
consent, so they agree before using the portal, and again whenever the rules get a new
version; staff are the 科协's employees, whose data are processed for their employment
and the office's statutory duties, not on consent (the `consent.give` act is theirs only).
Which version is current is the portal's (`web.processing_rules`): the rules are its
text. The audited event `consent` names the account and the version, nothing else.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from lifecycle.core import audit, clock
from lifecycle.core.accounts import Actor
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Consent
from lifecycle.engine import permissions

VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.-]{0,31}")
"""How a version of the rules is spelled (a date such as 2026-12-01, at most 32 characters)."""
DOORS = ("portal",)
"""Where consent is given: only the portal asks for it today."""
ACTION = "consent"


def agree(conn: Connection, actor: Actor | str, version: str, door: str = "portal") -> bool:
    """Record that `actor` agrees, for itself, to `version` of the rules; audited. False (and
    nothing written) when it had already agreed to that version."""
    actor = permissions.require(conn, actor, "consent.give")
    if not VERSION.fullmatch(version or ""):
        raise BadValue(f"{version!r} is not a version of the processing rules (a date such as "
                       "2026-12-01)")
    if door not in DOORS:
        raise BadValue(f"consent is given through {', '.join(DOORS)}, not {door!r}")
    if given(conn, actor.name, version) is not None:
        return False
    now = clock.now()
    conn.execute(insert(Consent).values(account=actor.name, version=version, at=now, door=door))
    audit.record(conn, actor, [audit.Event(ACTION, payload={"account": actor.name,
                                                              "rules_version": version})], at=now)
    return True


def given(conn: Connection, account: str, version: str) -> datetime | None:
    """When `account` agreed to `version` of the rules, or None if it has not."""
    return conn.execute(select(Consent.at).where(Consent.account == account,
                                                 Consent.version == version)).scalar()


def history(conn: Connection, account: str) -> list[dict[str, Any]]:
    """Every version `account` agreed to, oldest first (the page shows the last one)."""
    rows = conn.execute(select(Consent.version, Consent.at, Consent.door)
                        .where(Consent.account == account).order_by(Consent.at, Consent.id))
    return [dict(r._mapping) for r in rows]
