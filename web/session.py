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

from sqlalchemy import Connection, delete, func, insert, select, update

from lifecycle.core import accounts, clock, db, settings
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.models import Account, AccountToken, LoginAttempt

COOKIE = "starfund_session"
PRE_COOKIE = "starfund_pre"
FLASH = "starfund_flash"
"""A one-shot message for the next page (set by `http.page`, read by `render`)."""
WINDOW = timedelta(minutes=15)
MAX_PER_PAIR = 5
"""Failed logins for one account from one address in WINDOW before each further try from
there waits, 1, 2, 4 ... minutes, up to WINDOW: a stranger slows only their own guesses,
and the owner, from their own address, signs in as ever."""
MAX_PER_ADDRESS = 30
"""Failed logins from one address in WINDOW, for any names, before it waits out WINDOW."""
WARN_AT = 10
"""Failed logins for one account in WINDOW (from anywhere) at which its owner is told."""


IDLE = {True: timedelta(minutes=30), False: timedelta(hours=2)}
LIFETIME = {True: timedelta(hours=12), False: timedelta(hours=24)}
"""A session's idle timeout and absolute lifetime, for staff (True) and for society contacts
and experts (False), unless the settings say (session_idle_minutes, session_hours)."""
SEEN_EVERY = timedelta(minutes=1)
"""How often a session's last use is written (not on every page)."""


def _staff(actor: Actor) -> bool:
    from states.roles import STAFF

    return actor.holds(STAFF)


def lifetime(actor: Actor) -> timedelta:
    hours = settings.load().get("session_hours")
    return timedelta(hours=hours) if hours else LIFETIME[_staff(actor)]


def _idle(actor: Actor) -> timedelta:
    minutes = settings.load().get("session_idle_minutes")
    return timedelta(minutes=minutes) if minutes else IDLE[_staff(actor)]


def actor_of(conn: Connection, request) -> Actor | None:
    """The signed-in account: its session token known, not expired, not idle too long (then
    it ends); its last use noted at most once a minute."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        actor = accounts.from_token(conn, token)
    except (Refused, LookupError):
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = conn.execute(select(AccountToken.created_at, AccountToken.last_seen_at)
                       .where(AccountToken.token_hash == digest)).first()
    now = clock.wall()
    seen = (row.last_seen_at or row.created_at) if row is not None else now
    if now - seen > _idle(actor):
        _write(conn, delete(AccountToken).where(AccountToken.token_hash == digest))
        return None
    if now - seen >= SEEN_EVERY:
        _write(conn, update(AccountToken).where(AccountToken.token_hash == digest)
               .values(last_seen_at=now))
    return actor


def _write(conn: Connection, statement) -> None:
    """A page's own transaction when it writes; a short one of its own beside a page that
    only reads (a read-only snapshot cannot write)."""
    if not conn.get_execution_options().get(db.READ_ONLY):
        conn.execute(statement)
        return
    with conn.engine.begin() as other:
        other.execute(statement)


def token_hash_of(request) -> str:
    """The stored hash of this request's session token ("" without one)."""
    token = request.cookies.get(COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


def csrf_for(token: str) -> str:
    """The CSRF token of a session (or pre-login) token: nothing secret is kept for it."""
    return hashlib.sha256(b"csrf:" + token.encode()).hexdigest() if token else ""


def csrf_of(request) -> str:
    """The token forms must echo: derived from the session, else (none, or one the server no
    longer knows: `web.http` marks it stale and drops it) from the pre-login cookie."""
    token = request.cookies.get(COOKIE)
    if token and not getattr(request.state, "stale_session", False):
        return csrf_for(token)
    return csrf_for(request.cookies.get(PRE_COOKIE) or "")


def csrf_ok(request, given: str | None) -> bool:
    """Whether a form's token is this browser's: derived from its session cookie or its
    pre-login cookie (both HttpOnly, neither readable by another site). Either is taken, so
    a session cookie the server forgot does not block the login form, which carries the
    pre-login cookie's token."""
    if not given:
        return False
    return any(hmac.compare_digest(csrf_for(token), given)
               for token in (request.cookies.get(COOKIE), request.cookies.get(PRE_COOKIE))
               if token)


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
    return actor, accounts.issue_token(conn, name, days=lifetime(actor).total_seconds() / 86400)


def flash_of(request) -> tuple[str, bool]:
    """The flash message the last response left for this page, and whether it is an error."""
    raw = urllib.parse.unquote(request.cookies.get(FLASH, ""))
    return (raw[1:], True) if raw.startswith("!") else (raw, False)
