"""Accounts: who may act, stored in the database; and the identity an act is done under.

An `Actor` is what every act and advance receives: the account's name and roles, the
society or expert it speaks for, and `by`, the account that really issued the act when
it is not the same (an officer entering a society's paper declaration; the account that
runs the scheduler). Passwords (for `starfund login` and the portal) are argon2 hashes;
login tokens are random and only their SHA-256 is stored. The permission tables
themselves are data in `states.roles`; `lifecycle.engine.permissions` applies them.
"""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lifecycle.core import clock
from lifecycle.core.errors import BadValue, NotFound, UserError
from lifecycle.core.models import Account, AccountToken, Expert, Society
from lifecycle.core.names import clean_name

SYSTEM = "scheduler"
"""The system identity: the scheduler's deadlines fire under it; no account bears the name."""
SERVICE = "service"
"""The service identity (states.roles SERVICE): the OS user that owns the chain key file,
running the portal and the scheduler without a person's account; no account bears the name."""
IDENTITIES = (SYSTEM, SERVICE)
TOKEN_DAYS = 30


class Refused(UserError):
    """An act the account may not do: the message names the account, the act and the rule."""


@dataclass(frozen=True)
class Actor:
    """An identity acts are done under (see the module docstring)."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    society_id: str | None = None
    expert_id: str | None = None
    by: str | None = None
    by_roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        """How the trail and messages name it: "officer-li as society-s01" when acting for another."""
        return f"{self.by} as {self.name}" if self.by else self.name

    def holds(self, roles: tuple[str, ...] | frozenset[str]) -> bool:
        return bool(self.roles & set(roles))


def system(by: str | None = None) -> Actor:
    """The scheduler's identity (`by`: the account that runs it, if a person started it)."""
    return Actor(SYSTEM, frozenset({SYSTEM}), by=by)


def service() -> Actor:
    """The service identity (found by `lifecycle.console.Env` for the commands it may run)."""
    return Actor(SERVICE, frozenset({SERVICE}))


def _roles(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _actor(row: Any) -> Actor:
    return Actor(row.name, _roles(row.roles), row.society_id, row.expert_id)


def get(conn: Connection, name: str) -> Any:
    """The account row named `name` (NotFound when there is none)."""
    row = conn.execute(select(Account.__table__).where(Account.name == name)).first()
    if row is None:
        raise NotFound(f"no account {name!r}: see `starfund user list`, or add it with "
                       "`starfund user add`")
    return row


def load(conn: Connection, name: str) -> Actor:
    """The enabled account `name` as an Actor; unknown and disabled accounts are refused."""
    if name in IDENTITIES:
        raise Refused(f"{name!r} is the system's own identity; no one can act as it")
    row = get(conn, name)
    if row.disabled_at is not None:
        raise Refused(f"the account {name!r} was disabled on {row.disabled_at:%Y-%m-%d}; "
                      "nothing was done")
    return _actor(row)


def resolve(conn: Connection, actor: Actor | str) -> Actor:
    """An Actor from an Actor or an account name (checked enabled, and its roles reloaded:
    an Actor made earlier may not outlive a disable)."""
    if isinstance(actor, str):
        return load(conn, actor)
    if actor.name in IDENTITIES:
        return actor
    fresh = load(conn, actor.name)
    if actor.by:
        behind = load(conn, actor.by)
        return replace(fresh, by=behind.name, by_roles=behind.roles)
    return fresh


def as_other(conn: Connection, real: Actor, name: str) -> Actor:
    """`real` acting as the account `name` (both names go in the trail)."""
    target = load(conn, name)
    return replace(target, by=real.name, by_roles=real.roles)


def add(conn: Connection, name: str, roles: list[str] | tuple[str, ...], *,
        society_id: str | None = None, expert_id: str | None = None, email: str | None = None,
        password: str | None = None) -> Actor:
    """A new account (the role rules are checked by `permissions.grantable` first)."""
    name = clean_name(name, "the account name", 100)
    if name in IDENTITIES:
        raise BadValue(f"{name!r} is the system's own identity; no account may bear it")
    if "@" in name or re.search(r"\d{7,}", name):
        raise BadValue(f"the account name {name!r} looks like an e-mail address or a phone "
                       "number: account names stay in the audit trail for good, so they are "
                       "pseudonyms (e.g. s01-contact); give the address with --email")
    if conn.execute(select(Account.name).where(Account.name == name)).first():
        raise BadValue(f"an account named {name!r} exists already")
    if society_id is not None and conn.execute(
            select(Society.id).where(Society.id == society_id)).first() is None:
        raise NotFound(f"no society {society_id!r} (import the societies first)")
    if expert_id is not None and conn.execute(
            select(Expert.id).where(Expert.id == expert_id)).first() is None:
        raise NotFound(f"no expert {expert_id!r} (import the experts first)")
    conn.execute(insert(Account).values(
        name=name, roles=" ".join(sorted(set(roles))), society_id=society_id,
        expert_id=expert_id, email=email, created_at=clock.now(),
        password_hash=hash_password(password, name) if password else None))
    return load(conn, name)


def set_roles(conn: Connection, name: str, roles: list[str] | tuple[str, ...]) -> None:
    get(conn, name)
    conn.execute(update(Account).where(Account.name == name)
                 .values(roles=" ".join(sorted(set(roles)))))


def disable(conn: Connection, name: str) -> bool:
    """Disable an account and end its logins; False when it was disabled already."""
    row = get(conn, name)
    if row.disabled_at is not None:
        return False
    conn.execute(update(Account).where(Account.name == name).values(disabled_at=clock.now()))
    conn.execute(delete(AccountToken).where(AccountToken.account == name))
    return True


def listing(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(Account.__table__).order_by(Account.name))
    return [{"name": r.name, "roles": r.roles.split(), "society": r.society_id,
             "expert": r.expert_id, "email": r.email, "has_password": bool(r.password_hash),
             "created_at": r.created_at.isoformat(sep=" "),
             "disabled_at": r.disabled_at.isoformat(sep=" ") if r.disabled_at else None}
            for r in rows]


# --- passwords and tokens ---------------------------------------------------------------

def hash_password(password: str, name: str | None = None) -> str:
    from argon2 import PasswordHasher  # inside: only logins need it

    check_strength(password, name)
    return PasswordHasher().hash(password)


def check_strength(password: str, name: str | None = None) -> None:
    """At least 10 characters, not a common password, not the account's name: BadValue in
    Chinese and English otherwise."""
    if len(password) < 10:
        raise BadValue("密码至少需要 10 个字符 / a password needs at least 10 characters")
    if password.lower() in _common():
        raise BadValue("这个密码太常见 / this password is too common (it is on the lists "
                       "guessers try first)")
    if name and len(name) >= 3 and name.lower() in password.lower():
        raise BadValue("密码不能包含账号名 / a password must not contain the account's name")


@functools.lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    from pathlib import Path

    text = (Path(__file__).with_name("common_passwords.txt")).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def set_password(conn: Connection, name: str, password: str,
                 keep_token: str | None = None) -> int:
    """Set the password and end the account's sessions (all but `keep_token`, the one that
    changed it); returns how many ended."""
    get(conn, name)
    conn.execute(update(Account).where(Account.name == name)
                 .values(password_hash=hash_password(password, name)))
    ended = delete(AccountToken).where(AccountToken.account == name)
    if keep_token is not None:
        ended = ended.where(AccountToken.token_hash != _token_hash(keep_token))
    return conn.execute(ended).rowcount or 0


def check_password(conn: Connection, name: str, password: str) -> Actor:
    """The account, if `password` is its password; the same refusal for every failure, so
    a guesser learns nothing about which accounts exist."""
    row = conn.execute(select(Account.__table__).where(Account.name == name)).first()
    matches = password_matches(row.password_hash if row is not None else None, password)
    if row is None or row.disabled_at is not None or not matches:
        raise Refused("wrong account name or password")
    return _actor(row)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from (Argon2: slow on purpose,
    a third of a second of CPU with the default parameters; the portal checks it outside
    any write lock)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        if not password_hash:      # the same Argon2 work: a missing account takes as long
            PasswordHasher().verify(_decoy(), password)
            return False
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.lru_cache(maxsize=1)
def _decoy() -> str:
    """A hash no password matches, checked for names that have no account (or no password),
    so that a sign-in takes as long whether the name exists or not."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(secrets.token_urlsafe(32))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, name: str, days: float = TOKEN_DAYS) -> str:
    """A new login token for the account (returned once; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    now = clock.wall()
    conn.execute(insert(AccountToken).values(token_hash=_token_hash(token), account=name,
                                             created_at=now,
                                             expires_at=now + timedelta(days=days)))
    return token


def from_token(conn: Connection, token: str) -> Actor:
    """The account a login token belongs to; refused when unknown, expired or disabled."""
    row = conn.execute(select(AccountToken.account, AccountToken.expires_at)
                       .where(AccountToken.token_hash == _token_hash(token))).first()
    if row is None:
        raise Refused("your login is not known to this database (it ended, or the account "
                      "was disabled): run `starfund login` again")
    if row.expires_at < clock.wall():
        raise Refused(f"your login expired on {row.expires_at:%Y-%m-%d}: run `starfund login`")
    return load(conn, row.account)


def end_token(conn: Connection, token: str) -> None:
    conn.execute(delete(AccountToken).where(AccountToken.token_hash == _token_hash(token)))
