"""What the fast write path stores is exactly what the ORM would have stored, on both backends.

lifecycle.core.bulk hands rows to the driver (executemany on SQLite; on PostgreSQL COPY
from COPY_FROM_ROWS rows on, executemany below, and set-based statements). These tests
read the results back through SQLAlchemy and the CLI on the backend under test, on
PostgreSQL on each write path (conftest.write_path forces COPY or executemany for every
write), and exercise the version check that guards the set-based state update, the
outbox's dedupe keys and an error raised while rows are streamed into a COPY. Test-only
moves are stage data registered in lifecycle.kinds.KINDS (not mocks of the engine).
"""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from worlds import CALL, fingerprint, register_workflow, workflow_call

from lifecycle.core import clock, db
from lifecycle.core.models import Application, AuditEvent, Notification
from lifecycle.engine import engine
from notifications.queue import Message, enqueue
from states.roles import OFFICER
from states.spec import Move

CLOSE = datetime(2025, 4, 8, 9, 30, 15, 123456)
pytestmark = pytest.mark.usefixtures("write_path")


@pytest.fixture
def declared(small_call):
    small_call("advance", CALL, "submit", now="2025-03-20T10:00")
    return small_call


def test_rows_written_in_bulk_read_back_exactly(declared):
    declared("advance", CALL, "close_declaration", now=CLOSE.isoformat())
    e = db.make_engine(declared.db)
    with e.connect() as conn:
        apps = conn.execute(select(Application.state, Application.version,
                                   Application.updated_at)).all()
        events = conn.execute(select(AuditEvent.at, AuditEvent.payload)
                              .where(AuditEvent.action == "close_declaration")).all()
        notes = conn.execute(select(Notification.context, Notification.created_at,
                                    Notification.dedupe_key)
                             .where(Notification.kind == "formal_check_passed")
                             .order_by(Notification.application_id)).all()
    e.dispose()
    assert {a.version for a in apps} == {3} and {a.updated_at for a in apps} == {CLOSE}
    assert len(events) == 20 and {ev.at for ev in events} == {CLOSE}
    assert {json.loads(ev.payload)["version"] for ev in events} == {3}
    assert len(notes) == 20 and {n.created_at for n in notes} == {CLOSE}
    first = notes[0].context
    assert first["application"]["id"] == "A0001" and first["society"]["name"] == "市测试1学会"
    assert first["call"]["title"] == "2025年度学会重点活动项目资助"
    assert first["at"] == CLOSE.isoformat(sep=" ")
    assert notes[0].dedupe_key == "formal_check_passed:A0001:v3:society"
    assert "audit chain intact: 69 events" in declared("audit", "verify").output
    shown = json.loads(declared("show", "A0001", "--json").output)
    assert [h["action"] for h in shown["history"]] == ["create", "submit", "close_declaration"]


def test_enqueueing_the_same_messages_twice_stores_them_once(founded_db_url):
    e = db.make_engine(founded_db_url)
    messages = [Message("withdrawn", "society", f"S{i}", f"s{i}@example.org", "zh",
                        f"withdrawn:A{i}:v2:society", {"i": i, "名": "学会"}) for i in range(30)]
    for _ in range(2):
        with db.transaction(e) as s:
            enqueue(s.connection(), messages[:20] + messages[10:], datetime(2025, 5, 1))
    with e.connect() as conn:
        rows = conn.execute(select(Notification.dedupe_key, Notification.context)
                            .order_by(Notification.id)).all()
    e.dispose()
    assert [r.dedupe_key for r in rows] == [m.dedupe_key for m in messages]
    assert rows[29].context == {"i": 29, "名": "学会"}


# --- test-only moves ------------------------------------------------------------------------

def changed_underneath(conn, ctx, apps) -> None:
    """What a concurrent writer does between the batch's load and its write."""
    conn.execute(update(Application).where(Application.id == "A0013")
                 .values(version=Application.version + 1))


def sets_values(conn, ctx, apps) -> None:
    for i, app in enumerate(apps):
        ctx.updates[app.id] = {"score": 80.25 + i, "rank": i + 1, "recommended": i % 2 == 0,
                               "decision_reason": f"第{i}名 \"quoted\" ok", "granted_amount": None}
        if app.id == "A0005":  # a JSON column among the values: the general path
            ctx.updates[app.id] = {"fields": {"summary": "改过", "n": i}}


def test_a_version_changed_underneath_refuses_the_whole_batch(founded_db_url, tmp_path,
                                                               monkeypatch):
    register_workflow(monkeypatch, "project-race",
              Move("race", ("declared",), "eligible", prepare=(changed_underneath,),
                   who=(OFFICER,)))
    workflow_call(founded_db_url, tmp_path, "project-race")
    e = db.make_engine(founded_db_url)
    before = fingerprint(founded_db_url)
    with clock.frozen("2025-04-08"), pytest.raises(engine.ConflictError,
                                                   match="1 application.*changed by someone"):
        engine.advance_in_tx(e, CALL, "race", "admin-test")
    assert fingerprint(founded_db_url) == before
    e.dispose()


def test_values_computed_by_a_move_are_stored_with_their_types(founded_db_url, tmp_path,
                                                                monkeypatch):
    register_workflow(monkeypatch, "project-values",
              Move("score_all", ("declared",), "eligible", prepare=(sets_values,),
                   who=(OFFICER,)))
    cli = workflow_call(founded_db_url, tmp_path, "project-values")
    e = db.make_engine(founded_db_url)
    with clock.frozen("2025-04-08"):
        report = engine.advance_in_tx(e, CALL, "score_all", "admin-test")
    assert report.moved_total == 20
    with e.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(Application.__table__))}
        payloads = dict(conn.execute(text(
            "SELECT application_id, payload FROM audit_events WHERE action = 'score_all'")).all())
    e.dispose()
    a1, a2, a5 = rows["A0001"], rows["A0002"], rows["A0005"]
    assert (a1.score, a1.rank, a1.recommended, a1.granted_amount) == (80.25, 1, True, None)
    assert a1.decision_reason == '第0名 "quoted" ok' and a1.version == 3
    assert (a2.score, a2.rank, a2.recommended) == (81.25, 2, False)
    assert a5.fields == {"summary": "改过", "n": 4} and a5.score is None and a5.version == 3
    assert json.loads(payloads["A0001"])["set"]["rank"] == 1
    assert "audit chain intact" in cli("audit", "verify").output


def test_an_advance_skips_an_outbox_message_whose_key_is_already_there(declared):
    """A chunk's COPY meets a dedupe key already stored: that chunk is inserted again
    skipping the key (the stored message stays as it was), the others' messages go in."""
    e = db.make_engine(declared.db)
    kept = Message("formal_check_passed", "society", "S001", "kept@example.org", "zh",
                   "formal_check_passed:A0007:v3:society", {"kept": True})
    with db.transaction(e) as s:
        enqueue(s.connection(), [kept], CLOSE)
    declared("advance", CALL, "close_declaration", now=CLOSE.isoformat())
    with e.connect() as conn:
        notes = conn.execute(select(Notification.dedupe_key, Notification.recipient,
                                    Notification.context)
                             .where(Notification.kind == "formal_check_passed")).all()
    e.dispose()
    assert len(notes) == 20 and len({n.dedupe_key for n in notes}) == 20
    mine = next(n for n in notes if n.dedupe_key == kept.dedupe_key)
    assert (mine.recipient, mine.context) == ("kept@example.org", {"kept": True})
    assert "audit chain intact" in declared("audit", "verify").output


def decimal_score(app, ctx) -> dict:
    """A move's value the outbox's JSON cannot encode: it fails while the outbox rows are
    being made, on PostgreSQL inside their COPY."""
    return {"score": Decimal("81.5")}


def test_an_error_while_outbox_rows_are_made_rolls_the_whole_batch_back(founded_db_url,
                                                                          tmp_path, monkeypatch):
    register_workflow(monkeypatch, "project-decimal",
                      Move("score_all", ("declared",), "eligible", decide=(decimal_score,),
                           who=(OFFICER,)))
    workflow_call(founded_db_url, tmp_path, "project-decimal")
    before = fingerprint(founded_db_url)
    e = db.make_engine(founded_db_url)
    with clock.frozen("2025-04-08"), pytest.raises(TypeError, match="Decimal"):
        engine.advance_in_tx(e, CALL, "score_all", "admin-test")
    assert fingerprint(founded_db_url) == before
    with e.begin() as conn:   # the pooled connection is whole again: it writes and reads
        enqueue(conn, [Message("withdrawn", "society", "S001", "s@example.org", "zh",
                               "withdrawn:A0001:v9:society", {})], CLOSE)
        assert conn.execute(select(Notification.dedupe_key)
                            .where(Notification.kind == "withdrawn")).scalars().all() == \
            ["withdrawn:A0001:v9:society"]
    e.dispose()


def test_imported_applications_get_the_column_defaults(small_call):
    """create_applications writes through the driver; columns a file leaves out get defaults."""
    shown = json.loads(small_call("show", "A0003", "--json").output)["application"]
    assert shown["state"] == "draft" and shown["version"] == 1
    assert shown["title_en"] == "" and shown["discipline"] == "" and shown["decision_reason"] == ""
    assert shown["excluded_experts"] == [] and shown["fields"] == {"summary": "摘要"}
    assert shown["score"] is None and shown["granted_amount"] is None
    assert shown["declared_at"] == "2025-03-10 00:00:00"
