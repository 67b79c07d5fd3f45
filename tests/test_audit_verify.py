"""`audit verify` checks the trail against the applications it explains, not only its hash chain.

Each tamper below leaves the hash chain itself intact (or breaks it in a way
the chain alone reports as something else); the check of the trail against
the data must name it, with its count and ids, and exit 1.
"""
import json

from sqlalchemy import text
from worlds import execute, state_of

from lifecycle.core.db import make_engine


def verify(cli):
    """(exit code, text output, json report)."""
    r = cli("audit", "verify", ok=False)
    j = cli("audit", "verify", "--json", ok=False)
    assert j.exit_code == r.exit_code
    return r.exit_code, r.output, json.loads(j.output)


def problems(report):
    return {p["check"]: p for p in report["problems"]}


def test_untouched_database_verifies(worked):
    code, out, report = verify(worked)
    assert code == 0, out
    assert "audit chain intact: 69 events verified; 20 applications agree" in out
    assert report["ok"] is True and report["problems"] == [] and report["applications"] == 20


def test_state_changed_behind_the_engine(worked):
    before = state_of(worked, "A0003")
    other = "funded" if before != "funded" else "rejected"
    execute(worked.db, f"UPDATE applications SET state = '{other}' WHERE id IN ('A0003', 'A0011')")
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert set(found) == {"state"}, report["problems"]
    assert found["state"]["count"] == 2 and found["state"]["first"] == ["A0003", "A0011"]
    assert f"A0003 is {other}, event" in out and f"left it {before}" in out
    assert "2 application(s) not in the state their last audit event left them in" in out


def test_application_inserted_without_creation_event(worked):
    execute(worked.db, "INSERT INTO applications (id, call_id, society_id, category, title, title_en,"
                   " discipline, requested_amount, excluded_experts, fields, state, version,"
                   " declared_at, updated_at, decision_reason) VALUES ('X0001', '2025-project',"
                   " 'S001', 'academic', 'forged', '', '', 50000, '[]', '{}', 'eligible', 1,"
                   " '2025-03-11 09:00:00', '2025-03-11 09:00:00', '')")
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert set(found) == {"creation"}, report["problems"]
    assert found["creation"]["count"] == 1 and found["creation"]["first"] == ["X0001"]
    assert "1 application(s) without a creation event" in out and "X0001" in out


def test_whole_trail_deleted(worked):
    execute(worked.db, "DELETE FROM audit_events", "DELETE FROM audit_head")
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert {"empty", "creation"} <= set(found), report["problems"]
    assert "the audit trail is empty but the database holds 20 application(s)" in out
    assert found["creation"]["count"] == 20
    assert "A0001, A0002, A0003, A0004, A0005 and 15 more" in out


def test_trail_deleted_but_head_kept(worked):
    execute(worked.db, "DELETE FROM audit_events")
    code, out, report = verify(worked)
    assert code == 1
    assert {"empty", "head", "creation"} <= set(problems(report)), report["problems"]
    assert "the chain ends at event 0 but its head says 69" in out


def test_trail_cut_short_with_head_rewound(worked):
    """The last 20 events (the formal checks) deleted and the head moved back to match: the
    head's keyed MAC and the applications' states both give it away."""
    e = make_engine(worked.db)
    with e.begin() as conn:
        h = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 49")).scalar_one()
        conn.execute(text("DELETE FROM audit_events WHERE seq > 49"))
        conn.execute(text("UPDATE audit_head SET seq = 49, hash = :h"), {"h": h})
    e.dispose()
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert set(found) == {"state", "head"}, report["problems"]
    assert found["state"]["count"] == 20 and "left it declared" in out
    assert "does not carry its keyed MAC" in out


def test_creation_events_deleted_reports_every_problem(worked):
    e = make_engine(worked.db)
    with e.connect() as conn:
        seqs = conn.execute(text("SELECT seq FROM audit_events WHERE action = 'create' AND "
                                 "application_id IN ('A0002', 'A0009') ORDER BY seq")).scalars().all()
    e.dispose()
    execute(worked.db, "DELETE FROM audit_events WHERE action = 'create' AND application_id IN "
                   "('A0002', 'A0009')", "UPDATE applications SET state = 'funded' "
                                         "WHERE id = 'A0015'")
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert set(found) == {"chain", "creation", "state"}, report["problems"]
    assert found["chain"]["count"] == 2 and found["chain"]["first"] == [str(s) for s in seqs]
    assert f"audit chain BROKEN at event {seqs[0]}: event {seqs[0]} is missing" in out
    assert found["creation"]["first"] == ["A0002", "A0009"]
    assert found["state"]["first"] == ["A0015"]
    assert len([line for line in out.splitlines() if line.startswith("  ")]) == 3


def test_application_deleted_behind_the_engine(worked):
    execute(worked.db, "DELETE FROM applications WHERE id = 'A0020'")
    code, out, report = verify(worked)
    assert code == 1
    found = problems(report)
    assert set(found) == {"orphan"}, report["problems"]
    assert found["orphan"]["first"] == ["A0020"]
