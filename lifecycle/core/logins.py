"""The command line's logins: one token per database, in a file only its owner can read.

`starfund login NAME` checks the account's password and keeps the token the database
issued in `<config dir>/logins.json` (mode 600), keyed by the database's id; later
commands on that database act as that account. Without a login a command acts as the
account named like the OS user.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from lifecycle.core import keys

FILE = "logins.json"


def _path() -> Path:
    return keys.config_dir() / FILE


def _read() -> dict[str, dict[str, str]]:
    path = _path()
    if not path.exists():
        return {}
    try:
        return json.loads(keys.read_private(path, "login file"))
    except ValueError:
        return {}


def _write(data: dict[str, dict[str, str]]) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def token_for(database_id: str) -> tuple[str, str] | None:
    """(account, token) of this user's login to the database, if any."""
    entry = _read().get(database_id)
    return (entry["account"], entry["token"]) if entry else None


def keep(database_id: str, account: str, token: str) -> Path:
    data = _read()
    data[database_id] = {"account": account, "token": token}
    _write(data)
    return _path()


def forget(database_id: str) -> str | None:
    """Drop the login to this database; returns its token (to end it in the database too)."""
    data = _read()
    entry = data.pop(database_id, None)
    if entry is not None:
        _write(data)
    return entry["token"] if entry else None
