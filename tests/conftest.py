"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when chosen), the CLI, the clock.

STARFUND_TEST_BACKEND=postgres runs the whole suite against the PostgreSQL
server at STARFUND_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres),
one new database per test. Without a reachable server those tests skip with
the reason, except under CI (CI=true), where they fail: CI must run them.
"""
from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lifecycle.core import clock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CALL = ROOT / "examples" / "call.toml"
PG_ADMIN = os.environ.get("STARFUND_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin_url() -> str:
    return "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1]


def pg_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as e:  # noqa: BLE001
        return f"no PostgreSQL server at {PG_ADMIN}: {type(e).__name__}: {e}"


def _need_pg() -> None:
    why = pg_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but {why}")
        pytest.skip(why)


def _new_pg_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = _pg_admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}", drop


@pytest.fixture
def pg_url():
    """A new, empty PostgreSQL database (for tests that need PostgreSQL whatever the backend)."""
    _need_pg()
    url, drop = _new_pg_database()
    yield url
    drop()


@pytest.fixture
def db_url(tmp_path: Path):
    """A new, empty database of the backend under test (STARFUND_TEST_BACKEND)."""
    if os.environ.get("STARFUND_TEST_BACKEND", "sqlite") == "postgres":
        _need_pg()
        url, drop = _new_pg_database()
        yield url
        drop()
    else:
        yield str(tmp_path / "starfund.db")


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.set_now(None)
    yield
    clock.set_now(None)


class Cli:
    """Runs `starfund` commands in-process through click's CliRunner against one database."""

    def __init__(self, db: str, actor: str = "admin-test") -> None:
        self.db, self.actor = db, actor
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True, now: str | None = None,
                 actor: str | None = None) -> Any:
        from cli import main

        full = ["--db", self.db, "--as", actor or self.actor]
        if now:
            full += ["--now", now]
        result = self.runner.invoke(main, full + [str(a) for a in args], catch_exceptions=False)
        clock.set_now(None)
        if ok and result.exit_code != 0:
            raise AssertionError(f"starfund {' '.join(map(str, args))} exited {result.exit_code}:"
                                 f"\n{result.output}")
        return result


@pytest.fixture
def cli(db_url: str) -> Cli:
    c = Cli(db_url)
    c("init")
    return c


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def societies(n: int) -> list[dict[str, Any]]:
    return [{"id": f"S{i:03d}", "name": f"市测试{i}学会", "name_en": f"Test Society {i}",
             "email": f"s{i}@example.org", "institution": f"Inst{i % 4}",
             "annual_inspection_passed": "yes", "penalty": "no"} for i in range(1, n + 1)]


def experts(n: int) -> list[dict[str, Any]]:
    return [{"id": f"E{i:03d}", "name": f"专家{i}", "email": f"e{i}@example.org",
             "institution": f"Uni{i % 5}", "societies": ""} for i in range(1, n + 1)]


def applications(n: int, categories: tuple[str, ...] = ("academic", "policy", "popsci",
                                                         "talent", "capacity")) -> list[dict]:
    return [{"id": f"A{i:04d}", "society_id": f"S{(i - 1) // len(categories) + 1:03d}",
             "category": categories[(i - 1) % len(categories)], "title": f"项目 {i}",
             "requested_amount": 20000, "summary": "摘要"} for i in range(1, n + 1)]


@pytest.fixture
def small_call(cli: Cli, tmp_path: Path) -> Cli:
    """A call from examples/call.toml with 10 societies, 8 experts and 20 drafts."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(8)), now="2025-02-01")
    cli("application", "import", "2025-project",
        write_csv(tmp_path / "apps.csv", applications(20)), now="2025-03-10")
    return cli


def fingerprint(db: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two equal fingerprints mean an unchanged database."""
    from sqlalchemy import inspect, text

    from lifecycle.core.db import make_engine

    engine = make_engine(db)
    try:
        out = {}
        with engine.connect() as conn:
            for name in sorted(inspect(conn).get_table_names()):
                if name == "alembic_version":
                    continue
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
                out[name] = sorted(tuple(map(repr, r)) for r in rows)
        return out
    finally:
        engine.dispose()
