"""Invitations and password resets: single-use, expiring links to set a password.

A link is a row of `account_links` made by the act that asks for it (`user invite`, the
portal's "forgot password"), together with the message that will carry it. Its token is
made only when that message is delivered (`issue`, called by the delivery hook of the two
message kinds), and only the token's SHA-256 is kept: the outbox, the trail and the logs
never hold a usable link, and a message re-sent makes a new token that replaces the old.
Redeeming (`redeem`) checks purpose, expiry, use and revocation in one place.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lifecycle.core import clock
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import AccountLink

INVITE, RESET = "invite", "reset"
INVITE_DAYS = 7
RESET_MINUTES = 60
RESETS_PER_HOUR = 3
"""Reset links an account may be sent per hour (more asks are answered alike, and dropped)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: Connection, account: str, purpose: str, by: str,
           lifetime: timedelta | None = None) -> int:
    """A new link (no token yet); an earlier open link of the same purpose is revoked."""
    now = clock.wall()
    lifetime = lifetime or (timedelta(days=INVITE_DAYS) if purpose == INVITE
                            else timedelta(minutes=RESET_MINUTES))
    revoke(conn, account, purpose)
    return conn.execute(insert(AccountLink).values(
        account=account, purpose=purpose, created_at=now, expires_at=now + lifetime,
        created_by=by).returning(AccountLink.id)).scalar_one()


def recent(conn: Connection, account: str, purpose: str, within: timedelta) -> int:
    """How many links of `purpose` the account was given within `within` (rate limits)."""
    since = clock.wall() - within
    return len(conn.execute(select(AccountLink.id).where(
        AccountLink.account == account, AccountLink.purpose == purpose,
        AccountLink.created_at >= since)).all())


def revoke(conn: Connection, account: str, purpose: str) -> int:
    """End the account's open links of `purpose`; returns how many."""
    return conn.execute(update(AccountLink).where(
        AccountLink.account == account, AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None))
        .values(revoked_at=clock.wall())).rowcount or 0


def issue(conn: Connection, link_id: int) -> str | None:
    """The token of link `link_id`, made now (at delivery); None when the link was used,
    revoked or has expired (the message then says so instead of carrying a link)."""
    now = clock.wall()
    token = secrets.token_urlsafe(32)
    done = conn.execute(update(AccountLink).where(
        AccountLink.id == link_id, AccountLink.used_at.is_(None),
        AccountLink.revoked_at.is_(None), AccountLink.expires_at > now)
        .values(token_hash=_hash(token), sent_at=now)).rowcount
    return token if done else None


def lookup(conn: Connection, token: str, purpose: str) -> Any:
    """The open link of `token`; NotFound (one message for every reason a link is no good:
    unknown, used, revoked, expired), so a guesser learns nothing."""
    row = conn.execute(select(AccountLink).where(AccountLink.token_hash == _hash(token),
                                                 AccountLink.purpose == purpose)).first()
    if row is None or row.used_at is not None or row.revoked_at is not None \
            or row.expires_at <= clock.wall():
        raise NotFound("this link is not valid any more (it was used, replaced or has "
                       "expired); ask for a new one")
    return row


def redeem(conn: Connection, token: str, purpose: str) -> str:
    """Use the link (once): returns its account."""
    row = lookup(conn, token, purpose)
    done = conn.execute(update(AccountLink).where(AccountLink.id == row.id,
                                                  AccountLink.used_at.is_(None))
                        .values(used_at=clock.wall())).rowcount
    if not done:
        raise NotFound("this link was used just now; ask for a new one")
    return row.account


def expires(conn: Connection, link_id: int) -> datetime:
    row = conn.execute(select(AccountLink.expires_at).where(AccountLink.id == link_id)).scalar()
    if row is None:
        raise BadValue(f"no link {link_id}")
    return row
