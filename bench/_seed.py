"""Throwaway benchmark databases, seeded fast but legitimately.

Societies are bulk-inserted directly (they carry no state). Applications are
created through `engine.create_applications` (drafts, with their audit
'create' events, notifications and deadline) and declared through
`engine.advance(..., "submit")`, so every state the benchmark starts from was
reached the way a real call reaches it, and the audit chain verifies.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from lifecycle import kinds
from lifecycle.acts import calls  # noqa: E402
from lifecycle.core import clock, db
from lifecycle.core.models import Society  # noqa: E402
from lifecycle.engine import engine

PG_ADMIN = os.environ.get("STARFUND_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CALL_ID = "bench"
CATEGORIES = ("academic", "policy", "popsci", "talent", "capacity")
CREATED_AT = "2025-03-10 10:00"
SUBMIT_AT = "2025-03-20 10:00"
CLOSE_AT = "2025-04-08 09:00"
WHOLE = 1_000_000
"""Up to this many applications are seeded through the engine; beyond, by SQL (`_seed_by_sql`)."""


def pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}".strip()


def new_database(backend: str) -> tuple[str, Callable[[], None]]:
    """A new empty database of `backend` ('sqlite' or 'postgres') and how to drop it."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="starfund-bench-")
        return str(Path(folder) / "bench.db"), lambda: shutil.rmtree(folder, ignore_errors=True)
    name = f"sf_bench_{uuid.uuid4().hex[:10]}"
    drop = _pg_create(name)
    return "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name, \
        drop


def _pg_create(name: str, template: str | None = None) -> Callable[[], None]:
    """Create PostgreSQL database `name` (a copy of `template` if given); returns its drop."""
    import psycopg

    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return drop


def clone_database(url: str) -> tuple[str, Callable[[], None]]:
    """An exact copy of a seeded database (nobody may be connected to it)."""
    if "://" not in url:
        folder = tempfile.mkdtemp(prefix="starfund-bench-")
        import sqlite3

        src = sqlite3.connect(url)
        dst = sqlite3.connect(str(Path(folder) / "clone.db"))
        src.backup(dst)
        src.close()
        dst.close()
        return str(Path(folder) / "clone.db"), lambda: shutil.rmtree(folder, ignore_errors=True)
    source = url.rsplit("/", 1)[1]
    name = f"{source}_c{uuid.uuid4().hex[:6]}"
    return url.rsplit("/", 1)[0] + "/" + name, _pg_create(name, template=source)


def raw_connect(url: str):
    """A raw DBAPI connection (sqlite3 or psycopg) to a benchmark database."""
    if "://" not in url:
        import sqlite3

        conn = sqlite3.connect(url, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    import psycopg

    return psycopg.connect("postgresql://" + url.split("://", 1)[1])


def found(e, crypto: str | None = None) -> None:
    """Schema, keys (in a temporary STARFUND_CONFIG_DIR the child processes inherit; of
    `crypto`, `init --crypto`'s, default standard) and the bench's accounts `bench-admin`
    and `bench` (officer, approver, coordinator) and `bench-finance`, on a simulation
    database."""
    import os
    import tempfile

    from lifecycle.acts import setup
    from lifecycle.core import accounts, meta

    os.environ.setdefault("STARFUND_CONFIG_DIR", tempfile.mkdtemp(prefix="starfund-bench-"))
    staff = ("officer", "approver", "coordinator")
    setup.initialise(e, meta.SIMULATION, "bench-admin", staff, crypto=crypto)
    with e.begin() as conn:  # `bench` for the other benches, and a payer who proposed nothing
        accounts.add(conn, "bench", staff)
        accounts.add(conn, "bench-finance", ("finance",))


def _applications(start: int, stop: int) -> list[dict]:
    return [{"id": f"{CALL_ID}-{i:06d}", "society_id": f"S{i // len(CATEGORIES):06d}",
             "category": CATEGORIES[i % len(CATEGORIES)], "title": f"基准项目 {i}",
             "title_en": f"Bench project {i}", "discipline": "", "requested_amount": 20000,
             "excluded_experts": [], "fields": {"summary": "摘要"}} for i in range(start, stop)]


def _seed_by_sql(e, url: str, config, n: int, out) -> dict[str, float]:
    """Beyond WHOLE: the applications, already declared (version 2), put in by SQL, a
    million per transaction, without their creation and submission events and
    messages. Through the engine, 10,000,000 took over an hour to seed on this machine; the
    advance measured then is the same (the trail goes on from its head; `audit verify`
    would find the applications' earlier events missing)."""
    sqlite = "://" not in url
    conn = raw_connect(url)
    cur = conn.cursor()
    cats = "CASE i % 5 " + " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(CATEGORIES)) \
        + " END"
    if sqlite:
        num = "printf('%06d', {x})"
        series = ("WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s "
                  "WHERE i < {b}) ")
        declared_at, updated_at = "'2025-03-10 10:00:00.000000'", "'2025-03-20 10:00:00.000000'"
    else:
        num = "CASE WHEN {x} < 1000000 THEN lpad(({x})::text, 6, '0') ELSE ({x})::text END"
        series = ""
        declared_at, updated_at = "'2025-03-10 10:00'", "'2025-03-20 10:00'"
    source = "FROM s" if sqlite else "FROM generate_series({a}, {b}) AS s(i)"
    fields = json.dumps({"summary": "摘要"}).replace("{", "{{").replace("}", "}}")
    times: dict[str, float] = {}
    t = time.perf_counter()
    for a in range(0, n, 1_000_000):
        b = min(a + 1_000_000, n) - 1
        sql = (series + "INSERT INTO applications (id, call_id, society_id, category, title, "
               "title_en, discipline, requested_amount, excluded_experts, fields, state, version, "
               "declared_at, updated_at, decision_reason, society_class, reason_code) "
               f"SELECT '{CALL_ID}-' || " + num.format(x="i") + f", '{CALL_ID}', 'S' || "
               + num.format(x="i / 5") + f", {cats}, '基准项目 ' || i, 'Bench project ' || i, "
               f"'', 20000, '[]', '{fields}', 'declared', 2, {declared_at}, {updated_at}, "
               "'', '', '' " + source)
        cur.execute(sql.format(a=a, b=b))
        conn.commit()
        out(f"  {b + 1:,} of {n:,} applications put in ({time.perf_counter() - t:.0f} s)")
        sys.stdout.flush()
    if not sqlite:
        conn.autocommit = True
        cur.execute("ANALYZE")
    conn.close()
    times["applications by SQL"] = time.perf_counter() - t
    return times


def seed_declared(url: str, n: int, out=print,
                  at_drafts: Callable[[object], None] | None = None,
                  crypto: str | None = None) -> dict[str, float]:
    """A call with `n` applications in state 'declared', on a database of `crypto`
    (`init --crypto`); returns seeding times.

    `at_drafts(engine)` runs while all `n` are still drafts (the reminder scan).
    """
    times: dict[str, float] = {}
    e = db.make_engine(url)
    t = time.perf_counter()
    clock.set_now("2025-02-01 09:00")
    found(e, crypto)
    config = kinds.load(ROOT / "examples" / "call.toml").model_copy(update={"id": CALL_ID})
    societies = (n + len(CATEGORIES) - 1) // len(CATEGORIES)
    with db.transaction(e) as s:
        conn = s.connection()
        calls.create(conn, config, "bench-admin")
        for start in range(0, societies, 10000):
            conn.execute(insert(Society), [
                {"id": f"S{i:06d}", "name": f"基准测试{i}学会", "name_en": f"Bench Society {i}",
                 "email": f"s{i}@example.org", "institution": f"Inst{i % 50}", "language": "zh",
                 "annual_inspection_passed": True, "penalty": False}
                for i in range(start, min(start + 10000, societies))])
    times["schema+societies"] = time.perf_counter() - t

    if n > WHOLE:
        times.update(_seed_by_sql(e, url, config, n, out))
        clock.set_now(None)
        e.dispose()
        out("  seeded " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        return times
    clock.set_now(CREATED_AT)
    t = time.perf_counter()
    with db.transaction(e) as s:
        engine.create_applications(s.connection(), config, _applications(0, n), "bench-admin")
    times["create_applications"] = time.perf_counter() - t
    if at_drafts is not None:
        at_drafts(e)

    clock.set_now(SUBMIT_AT)
    t = time.perf_counter()
    engine.advance_in_tx(e, CALL_ID, "submit", "bench-admin")
    times["advance submit"] = time.perf_counter() - t
    clock.set_now(None)
    e.dispose()
    out("  seeded " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
    return times
