"""Retention by policy: the daily purge clears what outlived its category, once a day whoever
runs it (the scheduler, a second scheduler, a manual run), and audits counts only."""
from __future__ import annotations

import threading

import portal
from portal import client, login, pdf_bytes
from worlds import Cli, file_objection, json_of, proposed

from lifecycle.core import accounts, clock
from lifecycle.core import db as dbm
from lifecycle.core.models import AccountToken, Attachment, LoginAttempt, Notification, Objection
from lifecycle.scheduling import retention


def _count(db: str, model, *where) -> int:
    from sqlalchemy import func, select

    e = dbm.make_engine(db)
    try:
        with e.connect() as conn:
            return conn.execute(select(func.count()).select_from(model).where(*where)).scalar()
    finally:
        e.dispose()


def test_sign_ins_sessions_and_unfunded_uploads_are_purged_once_a_day(new_db):
    db = new_db("starfund", world=portal.PORTAL)
    cli = Cli(db)
    from lifecycle.acts import drafts

    clock.set_now(portal.OPEN)
    c = client(db)
    for _ in range(3):
        assert login(c, "s005", "wrong password!").status_code == 401
    assert login(client(db), "s006").status_code == 303          # a session (token)
    e = dbm.make_engine(db)
    try:
        with e.begin() as conn:      # a draft with its file, never submitted
            app = drafts.declare(conn, portal.CALL, {"category": "academic", "title": "草稿",
                                                     "requested_amount": 1000,
                                                     "summary": "摘要"}, "s005")
            drafts.attach(conn, app, "application_form", "草稿.pdf", pdf_bytes(), "s005")
    finally:
        e.dispose()
        clock.set_now(None)
    cli("advance", portal.CALL, "close_declaration", now="2025-04-08")
    assert _count(db, LoginAttempt) == 3 and _count(db, AccountToken) == 1

    # 60 days on: nothing is old enough yet, but the day's purge is done (and audited)
    r = json_of(cli("retention", "purge", "--json", now="2025-05-20"))
    assert (r["login_attempts"], r["tokens"], r["attachments"]) == (0, 0, 0)
    again = json_of(cli("retention", "purge", "--json", now="2025-05-20T18:00"))
    assert again["done_already"] is True

    # four years on, two schedulers at once: exactly one purges
    clock.set_now("2029-04-10T02:00")
    results: list = []
    engines = [dbm.make_engine(db) for _ in range(2)]
    try:
        threads = [threading.Thread(target=lambda en=en: results.append(retention.run_daily(
            en, accounts.system(), retention.periods()))) for en in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for en in engines:
            en.dispose()
        clock.set_now(None)
    done = [r for r in results if r is not None]
    assert len(done) == 1 and results.count(None) == 1
    assert (done[0]["login_attempts"], done[0]["tokens"], done[0]["attachments"]) == (3, 1, 1)
    assert _count(db, LoginAttempt) == 0 and _count(db, AccountToken) == 0
    assert _count(db, Attachment, Attachment.data != b"") == 0
    events = json_of(cli("audit", "query", "--trigger", "retention_purge", "--json"))
    assert [e["payload"]["counts"]["attachments"] for e in events] == [0, 1]
    assert all(set(e["payload"]) == {"day", "counts", "days"} for e in events)


def test_delivered_mail_and_resolved_objections_are_cleared_after_their_period(cli, tmp_path):
    proposed(cli, tmp_path)
    file_objection(cli, "A0001", "2025-05-12", "李华", "13700000000")
    cli("objection", "resolve", "1", "--dismiss", "--reason", "checked", now="2025-05-13")
    outbox = tmp_path / "outbox"
    cli("notify", "send", "--outbox", outbox, now="2025-05-13")
    sent = _count(cli.db, Notification, Notification.status == "sent")
    assert sent > 0 and len(list(outbox.glob("*.eml"))) == sent

    refused = cli("retention", "purge", now="2025-06-01", actor="finance-test", ok=False)
    assert refused.exit_code == 1 and "retention.purge" in refused.output
    r = json_of(cli("retention", "purge", "--outbox", outbox, "--json", now="2026-06-01"))
    assert r["outbox"] == sent and r["objections"] == 1
    assert list(outbox.glob("*.eml")) == []
    assert _count(cli.db, Notification, Notification.recipient != "") == 0
    assert _count(cli.db, Objection, Objection.contact != "") == 0
    shown = json_of(cli("retention", "show", "--json"))
    assert {c["category"]: c["days"] for c in shown["categories"]}["outbox"] == 365
    assert shown["purges"][0]["counts"]["outbox"] == sent
