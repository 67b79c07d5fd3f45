"""`engine.advance(conn, ...)` runs in the caller's transaction (issue 10).

The caller opens the transaction (`with engine.begin() as conn:`) and commits it; what it
writes there commits or rolls back with the moves. The advance itself runs in a SAVEPOINT:
an error inside it undoes only the advance (the caller may go on, on PostgreSQL too, where a
failed statement would otherwise poison the whole transaction), and a dry run rolls back to it.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from worlds import CALL, fingerprint, workflow_call

from lifecycle import kinds
from lifecycle.core import audit, clock, db
from lifecycle.core.models import Application, AuditEvent
from lifecycle.engine import engine
from states.roles import OFFICER
from states.spec import Move
from states.workflows import Workflow


class Stop(Exception):
    """The caller gives up after the advance: its whole transaction rolls back."""


def _states(conn) -> dict[str, int]:
    return dict(conn.execute(select(Application.state, func.count())
                             .where(Application.call_id == CALL)
                             .group_by(Application.state)).all())


def _notes(conn) -> int:
    return conn.execute(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == "test_note")).scalar_one()


def _note(conn) -> None:
    """A write of the caller's own, in the same transaction as the advance."""
    audit.record(conn, "admin-test", [audit.Event("test_note", CALL, payload={"n": 1})])


def test_advance_refuses_a_connection_outside_a_transaction(small_call):
    e = db.make_engine(small_call.db)
    before = fingerprint(small_call.db)
    with clock.frozen("2025-03-20"), e.connect() as conn:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            engine.advance(conn, CALL, "submit", "admin-test")
    e.dispose()
    assert fingerprint(small_call.db) == before


def test_the_callers_write_and_the_moves_commit_or_roll_back_together(small_call):
    e = db.make_engine(small_call.db)
    before = fingerprint(small_call.db)
    with clock.frozen("2025-03-20"), pytest.raises(Stop):
        with e.begin() as conn:
            _note(conn)
            assert engine.advance(conn, CALL, "submit", "admin-test").moved_total == 20
            raise Stop
    assert fingerprint(small_call.db) == before
    with clock.frozen("2025-03-20"), e.begin() as conn:
        _note(conn)
        report = engine.advance(conn, CALL, "submit", "admin-test")
    with e.connect() as conn:
        assert (report.moved_total, _notes(conn), _states(conn)) == (20, 1, {"declared": 20})
    e.dispose()


def test_a_dry_run_rolls_back_only_the_advance(small_call):
    e = db.make_engine(small_call.db)
    with clock.frozen("2025-03-20"), e.begin() as conn:
        _note(conn)
        report = engine.advance(conn, CALL, "submit", "admin-test", dry_run=True)
        assert report.dry_run and report.moved_total == 20
        assert _states(conn) == {"draft": 20}        # in the same transaction: nothing moved
    with e.connect() as conn:
        assert (_notes(conn), _states(conn)) == (1, {"draft": 20})
        assert conn.execute(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "submit")).scalar_one() == 0
    e.dispose()


def fails_after_writing(conn, ctx, moved) -> None:
    """An effect that fails with a database error once the states, audit events, messages and
    deadlines of the batch are written (PostgreSQL then refuses every further statement of
    the transaction, unless the savepoint is rolled back)."""
    conn.execute(text("SELECT * FROM no_such_table"))


def test_an_error_inside_advance_undoes_only_the_advance(founded_db_url, tmp_path, monkeypatch):
    stage = SimpleNamespace(STATES=(), MOVES=(
        Move("explode", ("declared",), "eligible", effects=(fails_after_writing,),
             who=(OFFICER,)),))
    project = kinds.of("project")
    monkeypatch.setitem(kinds.KINDS, "project-explode", replace(
        project, name="project-explode", workflow=Workflow(
            "project-explode", "test workflow", project.workflow.initial,
            (stage, *project.workflow.stages))))
    cli = workflow_call(founded_db_url, tmp_path, "project-explode")
    e = db.make_engine(cli.db)
    with clock.frozen("2025-04-08"), e.begin() as conn:
        _note(conn)
        with pytest.raises(Exception, match="no_such_table"):
            engine.advance(conn, CALL, "explode", "admin-test")
        assert _states(conn) == {"declared": 20}     # the caller's transaction goes on
        _note(conn)
    with e.connect() as conn:
        assert (_notes(conn), _states(conn)) == (2, {"declared": 20})
        assert conn.execute(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "explode")).scalar_one() == 0
    e.dispose()


def test_a_reading_transaction_waits_for_no_writer_and_writes_nothing(small_call):
    """The portal's GETs run in `db.reading`: on SQLite it reads while another connection
    holds the write lock, a write in it fails at once (query_only), and the connection
    writes again in its next ordinary transaction."""
    e = db.make_engine(small_call.db)
    with e.begin() as writer:  # BEGIN IMMEDIATE on SQLite: the write lock
        _note(writer)
        with db.reading(e) as conn:
            assert conn.execute(select(func.count()).select_from(Application)).scalar_one()
            assert _notes(conn) == 0  # the writer's note is not committed yet
            if db.is_sqlite(e):
                with pytest.raises(OperationalError, match="readonly"):
                    conn.execute(text("DELETE FROM applications"))
    for _ in range(2):  # the pooled connections write again
        with e.begin() as conn:
            _note(conn)
    with db.reading(e) as conn:
        assert _notes(conn) == 3
    e.dispose()


def test_a_reading_transaction_reads_one_snapshot(small_call):
    """`audit verify` walks the trail in many queries inside `db.reading`: a commit made
    meanwhile must not show half-way (on PostgreSQL's default READ COMMITTED it did, and
    the head then looked moved past the walked chain)."""
    e = db.make_engine(small_call.db)
    with db.reading(e) as conn:
        before = _notes(conn)
        with e.begin() as writer:
            _note(writer)
        assert _notes(conn) == before
    with db.reading(e) as conn:
        assert _notes(conn) == before + 1
    e.dispose()
