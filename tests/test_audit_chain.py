"""The audit trail verifies after real work and detects any edited, deleted or reordered row."""
import json

import pytest
from sqlalchemy import text
from worlds import execute

from lifecycle.core.db import make_engine


def test_verify_passes_after_work(worked):
    r = worked("audit", "verify", "--json")
    data = json.loads(r.output)
    # 4 admin acts + 20 creates + 20 submits + 20 formal checks
    assert data["ok"] is True and data["checked"] == 69


@pytest.mark.parametrize("tamper, seq", [
    ("UPDATE audit_events SET payload = '{}' WHERE seq = 30", 30),
    ("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 12", 12),
    ("UPDATE audit_events SET to_state = 'eligible' WHERE seq = 40", 40),
    ("DELETE FROM audit_events WHERE seq = 25", 25),
    ("DELETE FROM audit_events WHERE seq = 64", 64),
])
def test_tampering_is_detected(worked, tamper, seq):
    execute(worked.db, tamper)
    r = worked("audit", "verify", ok=False)
    assert r.exit_code == 1
    assert f"BROKEN at event {seq}" in r.output


def test_reordering_is_detected(worked):
    # swap two events' positions, keeping their own hashes
    execute(worked.db, "UPDATE audit_events SET seq = -1 WHERE seq = 20")
    execute(worked.db, "UPDATE audit_events SET seq = 20 WHERE seq = 21")
    execute(worked.db, "UPDATE audit_events SET seq = 21 WHERE seq = -1")
    r = worked("audit", "verify", ok=False)
    assert r.exit_code == 1 and "BROKEN at event 20" in r.output


def test_rehashing_one_row_still_breaks_the_next_link(worked):
    """Even with the key, recomputing an edited row's own hash does not help: the next row's
    prev_hash disagrees."""
    from sqlalchemy import select

    from lifecycle.core import audit
    from lifecycle.core.models import AuditEvent

    e = make_engine(worked.db)
    with e.begin() as conn:
        row = conn.execute(select(AuditEvent.__table__).where(AuditEvent.seq == 33)).one()
        key = audit.chain_key(conn)
        forged = audit._keyed_digest(key.secret, row.prev_hash, row.seq,
                                     row.at.isoformat(sep=" "), row.written_at.isoformat(sep=" "),
                                     "forger", row.by, row.action, row.call_id,
                                     row.application_id, row.from_state, row.to_state, row.payload)
        conn.execute(text("UPDATE audit_events SET actor='forger', hash=:h WHERE seq=33"),
                     {"h": forged})
    e.dispose()
    r = worked("audit", "verify", ok=False)
    assert r.exit_code == 1 and "BROKEN at event 34" in r.output


def test_audit_query_filters_and_pages(worked):
    r = worked("audit", "query", "--call", "2025-project", "--trigger", "submit", "--json",
               "--limit", "0")
    events = json.loads(r.output)
    assert len(events) == 20
    assert {e["from_state"] for e in events} == {"draft"} and {e["to_state"] for e in events} == {"declared"}
    assert all(e["actor"] == "admin-test" for e in events)
    page1 = json.loads(worked("audit", "query", "--limit", "10", "--json").output)
    page2 = json.loads(worked("audit", "query", "--limit", "10", "--page", "2", "--json").output)
    assert [e["seq"] for e in page1] == list(range(1, 11))
    assert [e["seq"] for e in page2] == list(range(11, 21))
    newest = json.loads(worked("audit", "query", "--limit", "3", "--newest-first", "--json").output)
    assert [e["seq"] for e in newest] == [69, 68, 67]
    one = json.loads(worked("audit", "query", "--application", "A0007", "--json").output)
    assert [e["action"] for e in one] == ["create", "submit", "close_declaration"]


def test_pages_of_one_trigger_call_or_application_are_slices_of_the_whole(worked):
    """On PostgreSQL such a page is read through the filter's (x, seq) index (a range form
    of the filter, `audit.page_sql`): it must give exactly the rows of the plain filter."""
    def seqs(*args):
        return [e["seq"] for e in json.loads(worked("audit", "query", *args, "--json").output)]
    for given in (("--trigger", "submit"), ("--call", "2025-project"),
                  ("--application", "A0007"), ("--call", "2025-project", "--trigger", "submit")):
        whole = seqs(*given, "--limit", "0")
        assert whole == sorted(whole) and len(whole) >= 3
        pages = [seqs(*given, "--limit", "4", "--page", str(p)) for p in (1, 2, 3)]
        assert sum(pages, []) == whole[:12]
        newest = [seqs(*given, "--limit", "2", "--newest-first", "--page", str(p))
                  for p in (1, 2)]
        assert sum(newest, []) == whole[::-1][:4]
    assert seqs("--trigger", "nothing-of-the-kind", "--limit", "5") == []


def test_audit_query_time_window_and_csv(worked):
    r = worked("audit", "query", "--since", "2025-04-01", "--until", "2025-05-01", "--csv",
               "--limit", "0")
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("seq,at,written_at,actor,by,action")
    assert len(lines) == 21 and all(",close_declaration," in line for line in lines[1:])


def test_audit_by_actor(small_call):
    small_call("user", "add", "li.ming", "--role", "officer")
    small_call("advance", "2025-project", "submit", now="2025-03-20", actor="li.ming")
    events = json.loads(small_call("audit", "query", "--actor", "li.ming", "--json").output)
    assert len(events) == 20 and {e["action"] for e in events} == {"submit"}
