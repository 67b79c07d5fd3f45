"""Fixtures: a database per test (SQLite, or PostgreSQL when chosen), the CLI, the clock, keys.

STARFUND_TEST_BACKEND=postgres runs the whole suite against the PostgreSQL
server at STARFUND_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
Without a reachable server those tests skip with the reason, except under CI
(CI=true), where they fail: CI must run them. A test gets either a new, empty
database (`db_url`, `pg_url`: for tests that run `init` themselves) or one as
`worlds.founded` leaves it (`founded_db_url`, `founded_pg_url`, `cli`), or a fuller
World (`small_call`, `worked`): each built once per session and copied for the test
(databases.py says how). The worlds the tests build and read are in worlds.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Databases, World, backend
from worlds import FOUNDED, SMALL, WORKED, Cli

from lifecycle.core import clock


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """The session's Worlds (built on first use) and its pool of PostgreSQL databases."""
    made = Databases(tmp_path_factory.mktemp("templates"))
    yield made
    made.close()


@pytest.fixture
def new_db(tmp_path: Path, databases: Databases, _own_config_dir: Path):
    """Makes databases of the backend under test: new_db(name) a new, empty one;
    new_db(name, founded=True) one as `worlds.founded` leaves it; new_db(name, world=W) one
    as World W leaves it. Returns its URL."""
    ends = []

    def make(name: str, founded: bool = False, world: World | None = None) -> str:
        world = world or (FOUNDED if founded else None)
        if backend() == "postgres":
            url, end = databases.postgres(world)
            ends.append(end)
            return url
        path = tmp_path / f"{name}.db"
        return databases.sqlite.copy(path, world) if world else str(path)

    yield make
    for end in ends:
        end()


@pytest.fixture
def db_url(new_db) -> str:
    """A new, empty database of the backend under test (STARFUND_TEST_BACKEND)."""
    return new_db("starfund")


@pytest.fixture
def founded_db_url(new_db) -> str:
    """A database of the backend under test as `worlds.founded` leaves it."""
    return new_db("starfund", founded=True)


@pytest.fixture
def pg_url(databases: Databases) -> Iterator[str]:
    """A new, empty PostgreSQL database (for tests that need PostgreSQL whatever the backend)."""
    url, end = databases.postgres()
    yield url
    end()


@pytest.fixture
def founded_pg_url(databases: Databases, _own_config_dir: Path) -> Iterator[str]:
    """A PostgreSQL database as `worlds.founded` leaves it, whatever the backend."""
    url, end = databases.postgres(FOUNDED)
    yield url
    end()


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys and logins of each test in its own folder, never in the user's ~/.config."""
    folder = tmp_path / "config"
    monkeypatch.setenv("STARFUND_CONFIG_DIR", str(folder))
    for name in ("STARFUND_AUDIT_KEY", "STARFUND_ANCHOR_KEY", "STARFUND_NOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STARFUND_ACTOR", "admin-test")  # a command run without --as: the tests' staff
    return folder


WRITE_PATHS = {"copy": 1, "executemany": 10**9}
"""lifecycle.core.bulk's COPY_FROM_ROWS for each PostgreSQL write path: COPY for every
write, or executemany for every write (the switch between them, forced both ways)."""


def _write_path(monkeypatch: pytest.MonkeyPatch, path: str) -> str:
    from lifecycle.core import bulk

    monkeypatch.setattr(bulk, "COPY_FROM_ROWS", WRITE_PATHS[path])           # this process
    monkeypatch.setenv("STARFUND_FAULT_COPY_FROM_ROWS", str(WRITE_PATHS[path]))  # its children
    return path


@pytest.fixture(params=sorted(WRITE_PATHS))
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each PostgreSQL write path in turn, in this process and the commands it starts; on
    SQLite (one path: executemany) the test runs once."""
    if backend() == "sqlite" and request.param == "copy":
        pytest.skip("SQLite has one write path (executemany)")
    return _write_path(monkeypatch, request.param)


@pytest.fixture(params=sorted(WRITE_PATHS))
def pg_write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each PostgreSQL write path in turn, for a test on PostgreSQL whatever the backend."""
    return _write_path(monkeypatch, request.param)


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def cli(founded_db_url: str) -> Cli:
    """`starfund` in-process on a founded database of the backend under test."""
    return Cli(founded_db_url)


@pytest.fixture
def small_call(new_db) -> Cli:
    """A call from examples/call.toml with 10 societies, 8 experts and 20 drafts
    (worlds.small_world, built once per session and copied)."""
    return Cli(new_db("starfund", world=SMALL))


@pytest.fixture
def worked(new_db) -> Cli:
    """The small call's 20 applications created, submitted and formally checked: 69 events
    (5 of them init's and the accounts')."""
    return Cli(new_db("starfund", world=WORKED))
