"""Fixtures: a fresh database per test (SQLite, or PostgreSQL when chosen), the CLI, the clock.

STARFUND_TEST_BACKEND=postgres runs the whole suite against the PostgreSQL
server at STARFUND_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres),
one new database per test. Without a reachable server those tests skip with
the reason, except under CI (CI=true), where they fail: CI must run them.
The worlds the tests build and read are in worlds.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from worlds import Cli, backend, founded, need_postgres, new_pg_database, small_world

from lifecycle.core import clock


@pytest.fixture
def new_db(tmp_path: Path):
    """Makes new, empty databases of the backend under test: new_db(name) -> its URL."""
    drops = []

    def make(name: str) -> str:
        if backend() == "postgres":
            need_postgres()
            url, drop = new_pg_database()
            drops.append(drop)
            return url
        return str(tmp_path / f"{name}.db")

    yield make
    for drop in drops:
        drop()


@pytest.fixture
def db_url(new_db) -> str:
    """A new, empty database of the backend under test (STARFUND_TEST_BACKEND)."""
    return new_db("starfund")


@pytest.fixture
def pg_url():
    """A new, empty PostgreSQL database (for tests that need PostgreSQL whatever the backend)."""
    need_postgres()
    url, drop = new_pg_database()
    yield url
    drop()


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys and logins of each test in its own folder, never in the user's ~/.config."""
    folder = tmp_path / "config"
    monkeypatch.setenv("STARFUND_CONFIG_DIR", str(folder))
    for name in ("STARFUND_AUDIT_KEY", "STARFUND_ANCHOR_KEY", "STARFUND_NOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STARFUND_ACTOR", "admin-test")  # a command run without --as: the tests' staff
    return folder


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def cli(db_url: str) -> Cli:
    return founded(Cli(db_url))


@pytest.fixture
def small_call(cli: Cli, tmp_path: Path) -> Cli:
    """A call from examples/call.toml with 10 societies, 8 experts and 20 drafts."""
    return small_world(cli, tmp_path)


@pytest.fixture
def worked(small_call: Cli) -> Cli:
    """The small call's 20 applications created, submitted and formally checked: 69 events (5 of them init's and the accounts')."""
    small_call("advance", "2025-project", "submit", now="2025-03-20")
    small_call("advance", "2025-project", "close_declaration", now="2025-04-08")
    return small_call
