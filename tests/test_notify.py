"""The outbox through the file channel: delivered once, failures listed and re-queued, crashes settled."""
from __future__ import annotations

import json
from email import message_from_bytes, policy

from sqlalchemy import select
from worlds import advance, audit_rows, fingerprint, listing

from lifecycle.core import clock
from lifecycle.core.db import make_engine, transaction
from lifecycle.core.models import Notification
from notifications import delivery, queue
from notifications.channels import FileChannel, build, message_id
from notifications.render import render


def test_send_delivers_each_message_once_and_audits_it(small_call, tmp_path):
    cli = small_call
    advance(cli, "submit", "2025-03-20")
    out = tmp_path / "mail"
    r = cli("notify", "send", "--outbox", out, now="2025-03-20T10:00")
    assert "20 sent, 0 to retry, 0 failed" in r.output
    files = sorted(out.glob("*.eml"))
    assert len(files) == 20
    mail = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    key = mail["X-Starfund-Key"]
    assert mail["Message-ID"] == message_id(key) and key.startswith("declaration_received:A0001")
    assert mail["To"] == "s1@example.org" and mail["Subject"].startswith("申报已受理")
    assert "A0001" in mail.get_body(("plain",)).get_content()

    r = cli("notify", "send", "--outbox", out, now="2025-03-20T11:00")
    assert "0 sent" in r.output and len(list(out.glob("*.eml"))) == 20
    rows = listing(cli, "--application", "A0001")
    assert [(n["kind"], n["status"], n["attempts"], n["sent_at"]) for n in rows] == [
        ("declaration_received", "sent", 1, "2025-03-20 10:00:00")]
    history = json.loads(cli("audit", "query", "--application", "A0001", "--json").output)
    sent = [h for h in history if h["action"] == "notification_sent"]
    assert len(sent) == 1 and sent[0]["payload"]["kind"] == "declaration_received"
    assert sent[0]["actor"] == "admin-test" and cli("audit", "verify").exit_code == 0
    show = json.loads(cli("show", "A0001", "--json").output)
    assert show["notifications"][0]["status"] == "sent"


def test_a_broken_template_fails_at_once_is_listed_and_requeued_after_the_fix(small_call, tmp_path):
    cli = small_call
    advance(cli, "submit", "2025-03-20", "--only", "A0001", "--only", "A0002")
    override = tmp_path / "tpl"
    (override / "zh").mkdir(parents=True)
    (override / "zh" / "declaration_received.txt").write_text(
        "{% block subject %}{{ application.budget }}{% endblock %}{% block body %}x{% endblock %}",
        encoding="utf-8")
    out = tmp_path / "mail"
    r = cli("notify", "send", "--outbox", out, "--templates", override, now="2025-03-20T10:00")
    assert "0 sent, 0 to retry, 2 failed" in r.output
    assert "has no attribute 'budget'" in r.output
    failed = listing(cli, "--failed")
    assert [n["status"] for n in failed] == ["failed", "failed"] and failed[0]["attempts"] == 1
    assert "template zh/declaration_received" in failed[0]["last_error"]
    assert len([e for e in audit_rows(cli.db) if e.action == "notification_failed"]) == 2

    r = cli("notify", "retry", "--id", str(failed[0]["id"]), now="2025-03-20T11:00")
    assert "1 notification(s) re-queued" in r.output
    r = cli("notify", "send", "--outbox", out, now="2025-03-20T11:00")    # built-in template
    assert "1 sent" in r.output
    assert [n["status"] for n in listing(cli, "--failed")] == ["failed"]
    cli("notify", "retry", now="2025-03-20T12:00")
    assert "1 sent" in cli("notify", "send", "--outbox", out, now="2025-03-20T12:00").output
    assert listing(cli, "--failed") == [] and len(list(out.glob("*.eml"))) == 2
    requeued = [json.loads(e.payload) for e in audit_rows(cli.db, action="notification_requeued")]
    assert [p["was"] for p in requeued] == ["failed", "failed"]


def test_retry_of_nothing_or_unknown_ids_is_clear(small_call):
    cli = small_call
    assert "0 notification(s) re-queued" in cli("notify", "retry").output
    before = fingerprint(cli.db)
    r = cli("notify", "retry", "--id", "999", ok=False)
    assert r.exit_code == 1 and "999 are not failed" in r.output
    assert fingerprint(cli.db) == before


def _claim_all(db: str, now: str) -> list:
    """What a sender does first: record the attempt (status sending) and commit."""
    e = make_engine(db)
    with transaction(e) as s:
        rows = delivery.claim(s.connection(), 100, clock.parse(now))
    e.dispose()
    return rows


def test_a_sender_that_crashed_is_settled_without_sending_twice(small_call, tmp_path):
    cli = small_call
    advance(cli, "submit", "2025-03-20", "--only", "A0001", "--only", "A0002")
    out = tmp_path / "mail"
    rows = _claim_all(cli.db, "2025-03-20T10:00")
    assert len(rows) == 2
    # the crashed sender got A0001's message out, then died before recording anything
    first = next(r for r in rows if r.application_id == "A0001")
    FileChannel(out).deliver(build(first.recipient, render(first.kind, first.language,
                                                           first.context), first.dedupe_key),
                             first.dedupe_key)
    written = (out / next(out.glob("*.eml")).name).stat().st_mtime_ns

    r = cli("notify", "send", "--outbox", out, now="2025-03-20T10:05")   # lease still running
    assert "0 sent" in r.output
    assert [n["status"] for n in listing(cli, "--status", "sending")] == ["sending", "sending"]
    assert listing(cli, "--in-doubt", now="2025-03-20T10:05") == []
    assert len(listing(cli, "--in-doubt", now="2025-03-20T10:11")) == 2

    r = cli("notify", "send", "--outbox", out, now="2025-03-20T10:11")
    assert "1 sent" in r.output and "2 settled after an interrupted send" in r.output
    files = list(out.glob("*.eml"))
    assert len(files) == 2
    a1 = next(f for f in files if "A0001" in f.name)
    assert a1.stat().st_mtime_ns == written                     # not written a second time
    rows = {n["application"]: n for n in listing(cli)}
    assert rows["A0001"]["status"] == rows["A0002"]["status"] == "sent"
    assert rows["A0001"]["attempts"] == 1 and rows["A0002"]["attempts"] == 2
    sent = [json.loads(e.payload) for e in audit_rows(cli.db, action="notification_sent")]
    assert sorted(p["dedupe_key"].split(":")[1] for p in sent) == ["A0001", "A0002"]


def test_enqueue_is_deduplicated(small_call):
    cli = small_call
    advance(cli, "submit", "2025-03-20", "--only", "A0001")
    e = make_engine(cli.db)
    with transaction(e) as s:
        row = s.connection().execute(select(Notification.__table__)).first()
        queue.enqueue(s.connection(), [queue.Message(
            row.kind, row.recipient_kind, row.recipient_id, row.recipient, row.language,
            row.dedupe_key, row.context, row.call_id, row.application_id)])
    with e.connect() as conn:
        assert len(conn.execute(select(Notification.id)).all()) == 1
    e.dispose()
