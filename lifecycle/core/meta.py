"""Facts about the database itself: its id, and whether it is live or a simulation.

A database is made `live` (a programme's: every act happens at the clock's real time)
or a `simulation` (the demo's, the tests', `init --simulation`: `--now` moves time). The
mode is written once, by `starfund init` or the demo, in the same transaction as the audit
event that records it, so relabelling a simulation live (or back) is an edit the audit
check finds; no command changes it.
"""
from __future__ import annotations

import uuid

from sqlalchemy import Connection, insert, select

from lifecycle.core.errors import NotFound, UserError
from lifecycle.core.models import Meta

LIVE, SIMULATION = "live", "simulation"
MODES = (LIVE, SIMULATION)
DATABASE_ID, MODE = "database_id", "mode"
CRYPTO = "crypto"
"""The algorithms the trail is keyed and anchored with (`keys.CRYPTOS`), written once by
`init` beside the same choice in the key file and the `database_init` event; none (a
database made before the choice) is standard."""
CHAIN_KEY, ANCHOR_KEY, KEYED_FROM = "chain_key_path", "anchor_key_path", "keyed_from"
"""A note of where `init` wrote the keys (paths only: the keys never live in the database;
nothing reads these to find a key: whoever can write here could point them anywhere), and
the first event the chain key covers (a hint for an unkeyed check; the key file says it)."""


class LiveDatabase(UserError):
    """A simulated time (--now, STARFUND_NOW, a frozen clock) was used on a live database."""


def read(conn: Connection) -> dict[str, str]:
    """Every fact, key -> value (empty for a database made before the meta table)."""
    return {k: v for k, v in conn.execute(select(Meta.key, Meta.value))}


def database_id(conn: Connection) -> str:
    value = conn.execute(select(Meta.value).where(Meta.key == DATABASE_ID)).scalar()
    if value is None:
        raise NotFound("this database has no id and no audit key yet: run `starfund init` on it")
    return value


def mode(conn: Connection) -> str | None:
    """live, simulation, or None for a database `starfund init` has not finished."""
    return conn.execute(select(Meta.value).where(Meta.key == MODE)).scalar()


def claim(conn: Connection, mode_: str) -> str:
    """Give a new database its id and mode (once: both are never changed); returns the id."""
    if mode_ not in MODES:
        raise ValueError(mode_)
    facts = read(conn)
    if facts.get(MODE) not in (None, mode_):
        raise UserError(f"this database is {facts[MODE]}; its mode is set once, when it is made, "
                        "and never changed (a simulation can never become live)")
    new_id = facts.get(DATABASE_ID) or str(uuid.uuid4())
    rows = [{"key": k, "value": v} for k, v in ((DATABASE_ID, new_id), (MODE, mode_))
            if k not in facts]
    if rows:
        conn.execute(insert(Meta), rows)
    return new_id


def put(conn: Connection, key: str, value: str) -> None:
    """Write a fact that is not set yet (facts are written once)."""
    if conn.execute(select(Meta.value).where(Meta.key == key)).first() is None:
        conn.execute(insert(Meta).values(key=key, value=value))


def refuse_simulated_time(mode_: str | None, simulated: bool) -> None:
    """On a live database, time is the clock's: a simulated time is refused before anything
    is written."""
    if mode_ == LIVE and simulated:
        raise LiveDatabase("this database is live: every act happens at the clock's real time, "
                           "so --now (and STARFUND_NOW) is refused; a simulation "
                           "(`starfund init --simulation`, the demo) accepts it")
