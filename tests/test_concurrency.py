"""Concurrent advances of one call, in real processes: every application moves exactly once.

SQLite serialises writers on its write lock (BEGIN IMMEDIATE), so the second
advance sees the first one's result. PostgreSQL locks the call row with
SELECT ... FOR UPDATE NOWAIT, so a second advance of the same call fails at
once with a clear conflict and writes nothing; on each of its write paths (COPY and
executemany: conftest.pg_write_path).
"""
from __future__ import annotations

import time

from processes import finish, start
from sqlalchemy import text
from worlds import CALL, FOUNDED, Cli, declared_batch, moves_per_application, states

from lifecycle.core import db

N = 2000
CONFLICT = "is being advanced by another process right now"


def _seeded(url: str, tmp_path) -> Cli:
    """On a founded database, N applications declared."""
    cli = Cli(url)
    declared_batch(cli, tmp_path, N)
    return cli


def _exactly_once(cli: Cli, url: str, before: dict[str, int]) -> None:
    moves = moves_per_application(url, "close_declaration")
    assert len(moves) == N and set(moves.values()) == {1}
    assert states(cli) == {"eligible": before["eligible"], "ineligible": before["ineligible"]}
    assert "audit chain intact" in cli("audit", "verify").output


def _two_at_once(url: str, tmp_path) -> list[tuple[int, str, str]]:
    cli = _seeded(url, tmp_path)
    procs = [start(url, "advance", CALL, "close_declaration", "--json") for _ in range(2)]
    results = [finish(p) for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    import json

    report = json.loads(winners[0][1])
    assert report["moved"] == N
    expected = {m["to"]: m["count"] for m in report["moves"]}
    assert expected["ineligible"] > 0 and expected["eligible"] > 0
    _exactly_once(cli, url, expected)
    return results


def test_two_concurrent_advances_on_sqlite_move_each_application_once(databases, tmp_path):
    results = _two_at_once(databases.sqlite.copy(tmp_path / "concurrent.db", FOUNDED), tmp_path)
    loser = next(r for r in results if r[0] != 0)
    # SQLite queued the loser behind the winner's write lock; it then found nothing to move.
    assert loser[0] == 1 and "can take close_declaration now" in loser[2]


def test_two_concurrent_advances_on_postgres_move_each_application_once(founded_pg_url, tmp_path,
                                                                        pg_write_path):
    results = _two_at_once(founded_pg_url, tmp_path)
    loser = next(r for r in results if r[0] != 0)
    assert loser[0] == 1
    assert CONFLICT in loser[2] or "can take close_declaration now" in loser[2], loser[2]


def test_four_processes_on_postgres_one_moves_the_batch_the_others_report_a_conflict(
        founded_pg_url, tmp_path, pg_write_path):
    pg_url = founded_pg_url
    cli = _seeded(pg_url, tmp_path)
    for i in range(4):
        cli("user", "add", f"admin{i}", "--role", "officer")
    # Hold the audit chain's head row: whichever process locks the call first then waits
    # inside its batch, so the three others are certain to arrive while it is running.
    holder = db.make_engine(pg_url)
    conn = holder.connect()
    trans = conn.begin()
    conn.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")).all()
    procs = [start(pg_url, "advance", CALL, "close_declaration", actor=f"admin{i}")
             for i in range(4)]
    try:
        deadline = time.monotonic() + 90
        while sum(p.poll() is not None for p in procs) < 3:
            assert time.monotonic() < deadline, "the losing processes did not finish"
            time.sleep(0.05)
    finally:
        trans.rollback()
        conn.close()
        holder.dispose()
    results = [finish(p) for p in procs]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1 and len(losers) == 3, results
    for code, out, err in losers:
        assert code == 1
        assert f"error: call {CALL} {CONFLICT}; nothing was written" in err
        assert out == ""
    assert "moved" in winners[0][1]
    counts = states(cli)
    assert counts.get("declared", 0) == 0 and counts["eligible"] + counts["ineligible"] == N
    _exactly_once(cli, pg_url, counts)
    # the winner alone appears in the audit trail of the batch
    e = db.make_engine(pg_url)
    with e.connect() as c:
        actors = c.execute(text("SELECT DISTINCT actor FROM audit_events "
                                "WHERE action = 'close_declaration'")).scalars().all()
    e.dispose()
    assert len(actors) == 1
