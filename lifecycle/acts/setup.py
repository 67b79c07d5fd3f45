"""Setting up: create or upgrade the database, its keys and its first account (`starfund init`).

A new database is given, in one transaction: its id and mode (live, or a simulation),
its crypto (standard: HMAC-SHA256 and Ed25519; or sm, 国密: HMAC-SM3 and SM2; written in
the meta table, the chain key file and the `database_init` event, and never changed),
a note of where its two keys were written (the keys themselves are files outside it,
written here; a key written outside the config folder is linked from it, since later
commands look for it there, never where the database says),
the first account, and the `database_init` audit event that records all of it, so
that the label is covered by the chain from the first event on.
"""
from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy import Engine, func, inspect, select

from lifecycle.console import (
    Env,
    OutputPath,
    common,
    echo,
    emit_json,
    json_option,
    open_database,
)
from lifecycle.core import accounts, audit, clock, db, keys, logins, meta
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Account, AuditHead
from lifecycle.engine import engine, permissions
from states.roles import APPROVER, OFFICER

FIRST_ROLES = (OFFICER, APPROVER)


@dataclass
class Founded:
    """What `initialise` did (each part is done once, the first time)."""

    schema: str
    database_id: str
    mode: str
    crypto: str = keys.STANDARD
    chain_key: Path | None = None
    anchor_key: Path | None = None
    accounts: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    """Calls made before definitions were versioned, given the version they run on."""
    sealed: int = 0
    """Events of an older release whose personal values were sealed now (trail_seal)."""


def initialise(e: Engine, mode: str, account: str | None = None,
               roles: tuple[str, ...] = FIRST_ROLES, chain_key: str | Path | None = None,
               anchor_key: str | Path | None = None, migrate: bool = True,
               crypto: str | None = None) -> Founded:
    """Bring a database to the newest schema and found it: id, mode, keys, first account.

    `mode` is that of a new database; an existing one keeps its own (asking to make a
    live one a simulation is refused). So is `crypto` (`keys.CRYPTOS`; None: standard for a
    new database, its own for an existing one; asking to change it is refused).
    Idempotent: on a founded database only the schema is upgraded. Key files written for a
    database whose founding then fails are removed. A database whose chain key has gone
    missing is not given a new one (that is what replacing the key would look like): the
    command says where the key was expected.
    """
    if crypto is not None:
        keys.crypto(crypto)
    if clock.simulated():  # a live database's first act is at the real time too
        existing = None
        if "meta" in inspect(e).get_table_names():
            with e.connect() as conn:
                existing = meta.mode(conn)
        meta.refuse_simulated_time(existing or mode, True)
    done = db.upgrade(e) if migrate else "created"
    written: list[Path] = []
    try:
        with e.begin() as conn:
            return _found(conn, done, mode, account, roles, chain_key, anchor_key, written,
                          crypto)
    except BaseException:
        for path in written:  # keys of a database that was not founded are no one's keys
            path.unlink(missing_ok=True)
        raise


def _found(conn, done: str, mode: str, account: str | None, roles: tuple[str, ...],
           chain_key: str | Path | None, anchor_key: str | Path | None,
           written: list[Path], crypto: str | None = None) -> Founded:
    """`initialise`'s transaction; the key files it writes are listed in `written`."""
    facts = meta.read(conn)
    if mode == meta.SIMULATION and facts.get(meta.MODE) == meta.LIVE:
        raise BadValue("this database is live; its mode is set once, when it is made, and "
                       "never changed (a live database cannot become a simulation)")
    keyed = meta.KEYED_FROM in facts
    had = facts.get(meta.CRYPTO) or keys.STANDARD
    if keyed and crypto not in (None, had):
        raise BadValue(f"this database's trail is crypto {had} ({keys.crypto(had).label}); "
                       "the crypto is chosen once, when the database is made, and never "
                       f"changed (--crypto {crypto} would need a new database)")
    crypto = had if keyed else crypto or keys.STANDARD
    mode = facts.get(meta.MODE) or mode
    database_id = meta.claim(conn, mode)
    result = Founded(done, database_id, mode, crypto)
    key = None
    if not keyed:
        head = conn.execute(select(AuditHead.seq)).scalar() or 0
        key = keys.create_chain_key(database_id, head + 1, chain_key, crypto)
        written.append(key.path)
        written += filter(None, [keys.link_default(database_id, keys.CHAIN, key.path)])
        meta.put(conn, meta.KEYED_FROM, str(head + 1))
        meta.put(conn, meta.CRYPTO, crypto)
        meta.put(conn, meta.CHAIN_KEY, str(key.path.resolve()))
        result.chain_key = key.path
    else:
        key_now = keys.load_chain_key(database_id, chain_key)
        sealed = audit.seal_clear(conn, key_now)   # an older release's clear values
        if sealed:
            audit.record(conn, "starfund-init", [audit.Event("trail_seal", payload={
                "redacted": sealed, "events": len(sealed)})])
        result.sealed = len(sealed)
    if meta.ANCHOR_KEY not in facts:
        path = keys.create_anchor_key(database_id, anchor_key, crypto)
        written.append(path)
        written += filter(None, [keys.link_default(database_id, keys.ANCHOR, path)])
        meta.put(conn, meta.ANCHOR_KEY, str(path.resolve()))
        result.anchor_key = path
    if not conn.execute(select(func.count()).select_from(Account)).scalar():
        name = account or _os_user()
        accounts.add(conn, name, permissions.grantable(roles))
        result.accounts.append(name)
    if key is not None:
        audit.record(conn, result.accounts[0] if result.accounts else "starfund-init",
                     [audit.Event(audit.INIT, payload={
                         meta.MODE: result.mode, meta.DATABASE_ID: database_id,
                         meta.CRYPTO: crypto,
                         "chain_key": key.id, "first_keyed_event": key.first_seq,
                         "first_accounts": result.accounts})])
    result.pinned = engine.pin_unpinned(conn, "starfund-init")
    return result


def _first_login(e: Engine, f: Founded, password: str | None) -> str | None:
    """A new live database's first account can act at once, whoever the OS user is: whoever
    ran `init` (and holds its keys) is logged in as it (as `starfund login` would), and its
    password is set when given. None when nothing was founded now, or on a simulation."""
    if not f.accounts or f.mode != meta.LIVE:
        return None
    name = f.accounts[0]
    with e.begin() as conn:
        if password is not None:
            accounts.set_password(conn, name, password)
            audit.record(conn, name, [audit.Event("account_password", payload={
                "account": name, "sessions_ended": 0})])
        token = accounts.issue_token(conn, name)
        audit.record(conn, name, [audit.Event("login", payload={"account": name,
                                                                "door": "starfund init"})])
    logins.keep(f.database_id, name, token)
    return name


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise BadValue("no OS user name to make the first account from; name it: "
                       "starfund init --account NAME") from None


@click.command()
@click.option("--simulation", is_flag=True,
              help="Make a simulation: --now moves time (for trials and training). Without it "
                   "the database is live: every act at the clock's real time. Set once.")
@click.option("--account", metavar="NAME",
              help="The first account (officer + approver) [default: your OS user name].")
@click.option("--key-file", type=OutputPath(), metavar="PATH",
              help="Where to write the audit chain key [default: "
                   "~/.config/starfund/keys/<database id>.key; env STARFUND_AUDIT_KEY].")
@click.option("--anchor-key", type=OutputPath(), metavar="PATH",
              help="Where to write the anchor signing key (Ed25519, or SM2 with --crypto sm) "
                   "[default: beside the chain key; env STARFUND_ANCHOR_KEY].")
@click.option("--crypto", type=click.Choice(list(keys.CRYPTOS)), default=None,
              help="The trail's algorithms, chosen once: standard (HMAC-SHA256 chain, Ed25519 "
                   "anchors) or sm (国密: HMAC-SM3 chain, SM2 anchors) [default: standard; an "
                   "existing database keeps its own].")
@click.option("--password-stdin", is_flag=True,
              help="Read the first account's password (for the portal) from standard input.")
@json_option
@common
def init(env: Env, simulation: bool, account: str | None, key_file: str | None,
         anchor_key: str | None, crypto: str | None, password_stdin: bool) -> None:
    """Create the database (or upgrade it), its audit keys and its first account.

    The keys are written outside the database, readable by you only; keep a copy
    of the chain key somewhere safe: without it the trail can only be checked
    unkeyed. Running init again upgrades the schema and changes nothing else.

    \b
    Example:  starfund init --db programme.db
              starfund init --db postgresql://postgres@127.0.0.1/starfund --account li-wei
              starfund init --db trial.db --simulation
              starfund init --db programme.db --crypto sm
    """
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password is not None:
        accounts.hash_password(password)          # a weak one refused before anything is made
    e = open_database(env.db_arg)
    f = initialise(e, meta.SIMULATION if simulation else meta.LIVE, account,
                   chain_key=key_file, anchor_key=anchor_key, crypto=crypto)
    logged_in = _first_login(e, f, password)
    if env.as_json:
        return emit_json({"schema": f.schema, "database_id": f.database_id, "mode": f.mode,
                          "crypto": f.crypto,
                          "chain_key": str(f.chain_key) if f.chain_key else None,
                          "anchor_key": str(f.anchor_key) if f.anchor_key else None,
                          "accounts": f.accounts, "sealed": f.sealed})
    echo(f"database {f.schema}: {e.url.render_as_string()} ({f.mode}, id {f.database_id})")
    if f.chain_key:
        echo(f"audit chain key written to {f.chain_key} (owner-only; keep a copy safe); "
             f"crypto {f.crypto}: {keys.crypto(f.crypto).label}")
    if f.anchor_key:
        echo(f"anchor signing key written to {f.anchor_key}")
    if f.sealed:
        echo(f"sealed the personal values of {f.sealed} audit event(s) an earlier release "
             "wrote in clear (attested: `audit verify` still passes)")
    for name in f.accounts:
        echo(f"first account: {name} ({' + '.join(FIRST_ROLES)}); add others with "
             "`starfund user add`")
    if logged_in:
        echo(f"you are logged in as {logged_in} on this database (`starfund whoami`; "
             "`starfund logout` ends it)" + ("" if password else
                                             f"; give it a password for the portal with "
                                             f"`starfund user password {logged_in}`"))
