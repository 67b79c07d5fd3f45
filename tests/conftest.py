"""Fixtures: a database per test (SQLite, or PostgreSQL when chosen), the CLI, the clock.

STARFUND_TEST_BACKEND=postgres runs the whole suite against the PostgreSQL
server at STARFUND_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
Without a reachable server those tests skip with the reason, except under CI
(CI=true), where they fail: CI must run them. A test gets either a new, empty
database (`db_url`, `pg_url`: for tests that run `init` themselves) or one as
`starfund init` leaves it (`init_db_url`, `init_pg_url`, `cli`): copied from a
template made once per session (databases.py says how). The worlds the tests
build and read are in worlds.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Databases, World, backend
from worlds import SMALL, WORKED, Cli

from lifecycle.core import clock


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """The session's templates (made on first use) and its pool of PostgreSQL databases."""
    made = Databases(tmp_path_factory.mktemp("templates"))
    yield made
    made.close()


@pytest.fixture
def new_db(tmp_path: Path, databases: Databases):
    """Makes databases of the backend under test: new_db(name) a new, empty one;
    new_db(name, init=True) one as `starfund init` leaves it; new_db(name, world=W) one as
    World W fills an initialised one. Returns its URL."""
    ends = []

    def make(name: str, init: bool = False, world: World | None = None) -> str:
        if backend() == "postgres":
            url, end = databases.postgres(init, world)
            ends.append(end)
            return url
        path = tmp_path / f"{name}.db"
        return databases.sqlite.copy(path, world) if init or world else str(path)

    yield make
    for end in ends:
        end()


@pytest.fixture
def db_url(new_db) -> str:
    """A new, empty database of the backend under test (STARFUND_TEST_BACKEND)."""
    return new_db("starfund")


@pytest.fixture
def init_db_url(new_db) -> str:
    """A database of the backend under test as `starfund init` leaves it."""
    return new_db("starfund", init=True)


def _pg(databases: Databases, init: bool) -> Iterator[str]:
    url, end = databases.postgres(init)
    yield url
    end()


@pytest.fixture
def pg_url(databases: Databases) -> Iterator[str]:
    """A new, empty PostgreSQL database (for tests that need PostgreSQL whatever the backend)."""
    yield from _pg(databases, init=False)


@pytest.fixture
def init_pg_url(databases: Databases) -> Iterator[str]:
    """A PostgreSQL database as `starfund init` leaves it, whatever the backend."""
    yield from _pg(databases, init=True)


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def cli(init_db_url: str) -> Cli:
    """`starfund` in-process on an initialised database of the backend under test."""
    return Cli(init_db_url)


@pytest.fixture
def small_call(new_db) -> Cli:
    """A call from examples/call.toml with 10 societies, 8 experts and 20 drafts
    (worlds.small_world, built once per session and copied)."""
    return Cli(new_db("starfund", world=SMALL))


@pytest.fixture
def worked(new_db) -> Cli:
    """The small call's 20 applications created, submitted and formally checked: 64 events."""
    return Cli(new_db("starfund", world=WORKED))
