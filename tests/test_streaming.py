"""An advance streams: read, decided and written a chunk at a time, it ends exactly as if
the whole batch were one chunk.

Two copies of the same drafts; on one, `starfund advance` runs with chunks of 3
applications (STARFUND_FAULT_CHUNK_ROWS, lifecycle.core.bulk), on the other with its own
chunk (one chunk for this batch). `submit` then `close_declaration` on each: the
one-per-society-and-category rule spans chunks (a society's 6th and 7th drafts repeat
categories its 1st and 2nd took, chunks earlier) and one society fails its annual
inspection. States, the audit trail (every event but the wall-clock time it was written
and the hashes that cover it; the chain verifies on both), the outbox and the deadlines
are the same. Runs on the backend under test.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from databases import World, backend
from processes import command, finish
from sqlalchemy import select
from worlds import (
    CALL,
    EXAMPLE_CALL,
    FOUNDED,
    Cli,
    applications,
    db_rows,
    societies,
    write_csv,
)

from lifecycle.core import bulk
from lifecycle.core.db import make_engine
from lifecycle.core.models import Application, AuditEvent, Deadline, Notification

N = 35


def _drafts(db: str, tmp_path) -> None:
    cli = Cli(db)
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(
        5, S003={"annual_inspection_passed": "no"})), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv",
                                                 applications(N, per_society=7)),
        now="2025-03-10T10:00")


DRAFTS = World("drafts-7-per-society", _drafts, base=FOUNDED)


def _advance(db: str, trigger: str, now: str, chunk: int | None) -> dict:
    env = {**os.environ}
    env.pop("STARFUND_FAULT_CHUNK_ROWS", None)
    if chunk:
        env["STARFUND_FAULT_CHUNK_ROWS"] = str(chunk)
    proc = subprocess.Popen(command(db, "advance", CALL, trigger, "--json", now=now),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    code, out, err = finish(proc)
    assert code == 0, err
    return json.loads(out)


def _outcome(db: str) -> dict:
    a, e, n, d = (Application.__table__, AuditEvent.__table__, Notification.__table__,
                  Deadline.__table__)
    return {
        "applications": db_rows(db, select(a.c.id, a.c.state, a.c.version, a.c.decision_reason)
                                .order_by(a.c.id)),
        "audit": db_rows(db, select(e.c.seq, e.c.at, e.c.actor, e.c.action, e.c.application_id,
                                    e.c.from_state, e.c.to_state, e.c.payload)
                         .order_by(e.c.seq)),
        "outbox": [(r.dedupe_key, r.recipient, r.kind, r.language, r.status, r.context)
                   for r in db_rows(db, select(n).order_by(n.c.dedupe_key))],
        "deadlines": db_rows(db, select(d.c.key, d.c.kind, d.c.due_at, d.c.fires, d.c.fired_at)
                             .order_by(d.c.key)),
    }


def test_a_batch_streamed_in_many_chunks_ends_as_one_chunk(new_db, write_path):
    chunked, whole = new_db("chunked", world=DRAFTS), new_db("whole", world=DRAFTS)
    steps = (("submit", "2025-03-20T10:00"), ("close_declaration", "2025-04-08T09:00"))
    reports = {}
    for db, chunk in ((chunked, 3), (whole, None)):
        reports[db] = [_advance(db, trigger, now, chunk) for trigger, now in steps]
        assert "audit chain intact" in Cli(db)("audit", "verify").output
    assert reports[chunked] == reports[whole]
    submit, close = reports[whole]
    # the rule across chunks: each society's 6th and 7th drafts repeat a category it took
    assert submit["skip_reasons"] == [{"reason": "society already declared in this category",
                                      "count": 10}]
    assert {(m["to"], m["count"]) for m in close["moves"]} == {
        ("eligible", 20), ("ineligible", 5), ("lapsed", 10)}
    a, b = _outcome(chunked), _outcome(whole)
    assert len(a["audit"]) > 2 * N and len(a["outbox"]) == 50
    for part in a:
        assert a[part] == b[part], part


def test_a_stream_an_index_orders_is_refused_on_sqlite(new_db):
    """SQLite streams rows from the table the advance writes between chunks: only a read
    sorted whole before its first row is safe, and `stream_rows` checks the plan."""
    if backend() != "sqlite":
        pytest.skip("PostgreSQL streams through a cursor on its snapshot; no plan to check")
    engine = make_engine(new_db("drafts", world=DRAFTS))
    apps = Application.__table__
    with engine.begin() as conn:
        ordered = select(apps.c.id, apps.c.state).order_by(apps.c.declared_at, apps.c.id)
        assert sum(len(c) for c in bulk.stream_rows(conn, ordered, (), 10)) == N
        by_key = select(apps.c.id, apps.c.state).order_by(apps.c.id)   # the primary key's order
        with pytest.raises(RuntimeError, match="sorted whole before its first row"):
            next(bulk.stream_rows(conn, by_key, (), 10))
    engine.dispose()
