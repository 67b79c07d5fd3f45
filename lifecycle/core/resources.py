"""Running out of a resource: disk, memory, database connections.

A command that runs out of one is not starfund's bug nor the user's mistake: its
transaction was rolled back and the database is as it was, so the door says so in one
line (`shortage`) instead of a traceback. The fault is often hidden: SQLite rolls the
whole transaction back when the disk fills, and SQLAlchemy's later release of a
savepoint then fails with "no such savepoint", the disk's message only in the chain of
causes; so the whole chain is read.
"""
from __future__ import annotations

import errno

DISK, MEMORY, CONNECTIONS = "disk space", "memory", "database connections"
_ADVICE = {DISK: "free some disk space", MEMORY: "free some memory or move fewer at once",
           CONNECTIONS: "wait for other sessions to end, or allow the server more"}

_SQLSTATES = {"53100": DISK, "53200": MEMORY, "53300": CONNECTIONS, "53400": CONNECTIONS}
"""PostgreSQL's class 53, insufficient resources (DiskFull, OutOfMemory, TooManyConnections,
ConfigurationLimitExceeded)."""
_SQLITE_CODES = {13: DISK, 7: MEMORY}
"""SQLITE_FULL, SQLITE_NOMEM."""
_ERRNOS = {errno.ENOSPC: DISK, errno.EDQUOT: DISK, errno.ENOMEM: MEMORY}
_TEXTS = (("database or disk is full", DISK), ("no space left on device", DISK),
          ("could not extend file", DISK), ("out of memory", MEMORY),
          ("too many clients", CONNECTIONS), ("too many connections", CONNECTIONS),
          ("remaining connection slots are reserved", CONNECTIONS))


def _causes(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (a DBAPI error's `orig`) and what caused it, once each."""
    seen: list[BaseException] = []
    todo = [error]
    while todo and len(seen) < 20:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def _kind(e: BaseException) -> str | None:
    if isinstance(e, MemoryError):
        return MEMORY
    if type(e).__name__ == "TimeoutError" and type(e).__module__ == "sqlalchemy.exc":
        return CONNECTIONS  # the pool had no connection to give within its timeout
    if isinstance(e, OSError) and e.errno in _ERRNOS:
        return _ERRNOS[e.errno]
    kind = _SQLSTATES.get(getattr(e, "sqlstate", None) or "") or \
        _SQLITE_CODES.get((getattr(e, "sqlite_errorcode", None) or 0) & 0xFF)
    if kind:
        return kind
    if type(e).__module__.split(".")[0] in ("sqlite3", "psycopg", "sqlalchemy"):
        text = str(e).lower()
        return next((k for t, k in _TEXTS if t in text), None)
    return None


def shortage(error: BaseException) -> str | None:
    """One line for an error that is a resource running out (None for anything else): which
    resource, the system's own words, and that nothing was written."""
    for e in _causes(error):
        kind = _kind(e)
        if kind:
            said = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return (f"out of {kind} ({type(e).__name__}: {said}): nothing was written (the "
                    f"transaction was rolled back); {_ADVICE[kind]} and run the command again")
    return None
