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
import urllib.parse
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from lifecycle.core import accounts, clock, db
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.models import Account, LoginAttempt

COOKIE = "starfund_session"
PRE_COOKIE = "starfund_pre"
FLASH = "starfund_flash"
"""A one-shot message for the next page (set by `http.page`, read by `render`)."""
SESSION_DAYS = 1
WINDOW = timedelta(minutes=15)
MAX_PER_PAIR = 5
"""Failed logins for one account from one address in WINDOW before each further try from
there waits, 1, 2, 4 ... minutes, up to WINDOW: a stranger slows only their own guesses,
and the owner, from their own address, signs in as ever."""
MAX_PER_ADDRESS = 30
"""Failed logins from one address in WINDOW, for any names, before it waits out WINDOW."""
WARN_AT = 10
"""Failed logins for one account in WINDOW (from anywhere) at which its owner is told."""


def actor_of(conn: Connection, request) -> Actor | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return accounts.from_token(conn, token)
    except (Refused, LookupError):
        return None


def token_hash_of(request) -> str:
    """The stored hash of this request's session token ("" without one)."""
    token = request.cookies.get(COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


def csrf_for(token: str) -> str:
    """The CSRF token of a session (or pre-login) token: nothing secret is kept for it."""
    return hashlib.sha256(b"csrf:" + token.encode()).hexdigest() if token else ""


def csrf_of(request) -> str:
    """The token forms must echo: derived from the session, else the pre-login cookie."""
    return csrf_for(request.cookies.get(COOKIE) or request.cookies.get(PRE_COOKIE) or "")


def csrf_ok(request, given: str | None) -> bool:
    expected = csrf_of(request)
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def address_of(request) -> str:
    return (request.client.host if request.client else "unknown")[:64]


def throttled(conn: Connection, name: str, address: str) -> str | None:
    """Why a login from `address` for `name` is refused for now, or None (see MAX_PER_PAIR
    and MAX_PER_ADDRESS: failures are counted per account and address, never per account
    alone, so nobody can lock another person's account)."""
    now = clock.wall()
    rows = conn.execute(select(LoginAttempt.account, func.count(), func.max(LoginAttempt.at))
                        .where(LoginAttempt.at > now - WINDOW, LoginAttempt.address == address)
                        .group_by(LoginAttempt.account)).all()
    if sum(n for _, n, _ in rows) >= MAX_PER_ADDRESS:
        return "too many failed logins from your address: wait 15 minutes and try again"
    pair = next(((n, last) for a, n, last in rows if a == name), (0, None))
    if pair[0] >= MAX_PER_PAIR:
        last = datetime.fromisoformat(pair[1]) if isinstance(pair[1], str) else pair[1]
        wait = timedelta(seconds=min(60 * 2 ** (pair[0] - MAX_PER_PAIR),
                                     WINDOW.total_seconds()))
        if now < last + wait:
            left = int((last + wait - now).total_seconds()) + 1
            return (f"too many failed logins for this account from your address: try again "
                    f"in {left} s")
    return None


def _warn_owner(conn: Connection, name: str) -> None:
    """Tell an account's owner, once per WINDOW, that its password is being guessed."""
    now = clock.wall()
    n = conn.execute(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.account == name, LoginAttempt.at > now - WINDOW)).scalar()
    if n != WARN_AT:
        return
    row = conn.execute(select(Account.name, Account.email, Account.roles)
                       .where(Account.name == name, Account.email.is_not(None))).first()
    if row is None:
        return
    from notifications import contexts
    from notifications.queue import Message, enqueue

    enqueue(conn, [Message(contexts.ATTEMPTS_KIND, "account", row.name, row.email, "zh",
                           f"{contexts.ATTEMPTS_KIND}:{row.name}:{now:%Y%m%d%H%M}",
                           contexts.sign_in_attempts(row.name, n, now))])


def verify(database, request, form: dict[str, str]) -> str | None:
    """The slow half of a login, run before its write transaction (the login page's `before`):
    Argon2 costs a third of a second of CPU, and holding SQLite's write lock that long made
    every other request wait behind each login. The password hash the form's password
    matches, or None (wrong, no such account, disabled, or throttled: then not checked)."""
    name = form.get("name", "").strip()[:100]
    with db.reading(database) as conn:
        if throttled(conn, name, address_of(request)):
            return None
        row = conn.execute(select(Account.password_hash, Account.disabled_at)
                           .where(Account.name == name)).first()
    matches = accounts.password_matches(row.password_hash if row is not None else None,
                                        form.get("password", ""))  # as slow for no account
    if row is None or row.disabled_at is not None or not matches:
        return None
    return row.password_hash


def log_in(conn: Connection, name: str, verified: str | None, address: str
           ) -> tuple[Actor, str]:
    """(the account, a new session token) or Refused; failures are counted for throttling.
    `verified` is what `verify` found: the account's password hash the password matched."""
    why = throttled(conn, name, address)
    current = conn.execute(select(Account.password_hash, Account.disabled_at)
                           .where(Account.name == name)).first()
    if why or verified is None or current is None or current.disabled_at is not None \
            or current.password_hash != verified:  # (changed since: checked again next time)
        conn.execute(insert(LoginAttempt).values(account=name[:100], address=address,
                                                 at=clock.wall()))   # a throttled try too
        _warn_owner(conn, name[:100])
        raise Refused(why or "wrong account name or password")
    actor = accounts.load(conn, name)
    conn.execute(delete(LoginAttempt).where(LoginAttempt.account == name,
                                            LoginAttempt.address == address))
    return actor, accounts.issue_token(conn, name, days=SESSION_DAYS)


def flash_of(request) -> tuple[str, bool]:
    """The flash message the last response left for this page, and whether it is an error."""
    raw = urllib.parse.unquote(request.cookies.get(FLASH, ""))
    return (raw[1:], True) if raw.startswith("!") else (raw, False)
