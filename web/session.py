"""Who is asking: the session cookie, CSRF tokens and login throttling.

A session is a login token of the accounts table (only its SHA-256 is stored,
as for `starfund login`), so nothing secret lives in the database and a disabled
account's sessions end with it. The CSRF token of a session is derived from the
token itself, and the login form (before any session) uses a double-submit
cookie: no server-side secret is needed for either.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import Connection, delete, func, insert, or_, select

from lifecycle.core import accounts, clock
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.models import LoginAttempt

COOKIE = "starfund_session"
PRE_COOKIE = "starfund_pre"
SESSION_DAYS = 1
WINDOW = timedelta(minutes=15)
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 30
"""Failed logins allowed in WINDOW per account name and per client address."""


def actor_of(conn: Connection, request) -> Actor | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return accounts.from_token(conn, token)
    except (Refused, LookupError):
        return None


def csrf_of(request) -> str:
    """The token forms must echo: derived from the session, else the pre-login cookie."""
    token = request.cookies.get(COOKIE) or request.cookies.get(PRE_COOKIE) or ""
    return hashlib.sha256(b"csrf:" + token.encode()).hexdigest() if token else ""


def csrf_ok(request, given: str | None) -> bool:
    expected = csrf_of(request)
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def address_of(request) -> str:
    return (request.client.host if request.client else "unknown")[:64]


def throttled(conn: Connection, name: str, address: str) -> str | None:
    """Why logins are refused for now (too many recent failures), or None."""
    since = clock.wall() - WINDOW
    rows = conn.execute(select(LoginAttempt.account, LoginAttempt.address, func.count())
                        .where(LoginAttempt.at > since,
                               or_(LoginAttempt.account == name, LoginAttempt.address == address))
                        .group_by(LoginAttempt.account, LoginAttempt.address)).all()
    per_account = sum(n for a, _, n in rows if a == name)
    per_address = sum(n for _, ad, n in rows if ad == address)
    if per_account >= MAX_PER_ACCOUNT or per_address >= MAX_PER_ADDRESS:
        return "too many failed logins: wait 15 minutes and try again"
    return None


def log_in(conn: Connection, name: str, password: str, address: str) -> tuple[Actor, str]:
    """(the account, a new session token) or Refused; failures are counted for throttling."""
    why = throttled(conn, name, address)
    if why:
        raise Refused(why)
    try:
        actor = accounts.check_password(conn, name, password)
    except Refused:
        conn.execute(insert(LoginAttempt).values(account=name[:100], address=address,
                                                 at=clock.wall()))
        raise
    conn.execute(delete(LoginAttempt).where(LoginAttempt.account == name))
    return actor, accounts.issue_token(conn, name, days=SESSION_DAYS)
