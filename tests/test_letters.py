"""Letters fit to send (issue 13): reasons in the recipient's language, the letterhead from the
settings, the review assignment's deadline and score sheet, an outbox an administrator holds.
Delivered through the real SMTP server on loopback (tests/smtp_server.py)."""
from __future__ import annotations

import io
from email.header import decode_header, make_header
from email.utils import parseaddr

import openpyxl
import pytest
from smtp_server import Inbox, free_port, serve, smtp_args
from worlds import (
    CALL,
    Cli,
    applications,
    audit_rows,
    call_file,
    experts,
    founded,
    in_review,
    json_of,
    listing,
    refused,
    societies,
    write_csv,
)


def _send(cli: Cli, now: str) -> list:
    inbox, port = Inbox(), free_port()
    server = serve(inbox, port)
    try:
        cli("notify", "send", *smtp_args(port), now=now)
    finally:
        server.stop()
    return [m for _, m in inbox.messages]


def _text(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()


@pytest.fixture
def letterhead(monkeypatch):
    for k, v in {"MAIL_FROM": "xh@kexie.example.org", "MAIL_FROM_NAME": "市科协学会工作部",
                 "MAIL_REPLY_TO": "help@kexie.example.org", "MAIL_DOMAIN": "kexie.example.org",
                 "MAIL_SIGNATURE": "市科协学会工作部 电话 010-0000", "MAIL_SIGNATURE_EN":
                 "Society Affairs, tel. 010-0000", "PORTAL_URL": "https://portal.example.org/"}.items():
        monkeypatch.setenv(f"STARFUND_{k}", v)


def test_held_reasons_in_each_language_with_the_letterhead(new_db, tmp_path, letterhead):
    """Formal-check letters are held; the administrator lists, edits, discards and releases
    them; what goes out says the reason in the society's language, from the letterhead."""
    cli = founded(Cli(new_db("letters")))
    socs = societies(3)
    socs[0].update(annual_inspection_passed="no")                   # S001 writes Chinese
    socs[1].update(annual_inspection_passed="no", language="en")    # S002 writes English
    cli("call", "create", call_file(tmp_path, {"mail": {"hold": ["formal_check_failed"]}}),
        now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "s.csv", socs), now="2025-02-01")
    apps = [{**a, "society_id": f"S00{i}"} for i, a in enumerate(applications(3), start=1)]
    cli("application", "import", CALL, write_csv(tmp_path / "a.csv", apps), now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")
    sent = _send(cli, "2025-04-08T10:00")               # all but the held ones go
    assert {m["X-Starfund-Key"].split(":")[0] for m in sent} == {
        "declaration_received", "formal_check_passed"}
    held = json_of(cli("notify", "outbox", "list", "--json"))
    assert [(h["application"], h["kind"]) for h in held] == [
        ("A0001", "formal_check_failed"), ("A0002", "formal_check_failed")]
    assert "2 held: 2 formal_check_failed" in cli("notify", "outbox", "list").output
    zh_id, en_id = held[0]["id"], held[1]["id"]
    shown = cli("notify", "outbox", "show", zh_id).output
    assert "原因：学会年检未通过" in shown and "society" not in shown
    (tmp_path / "body.txt").write_text("学会：\n请补交年检材料后再申报。\n", encoding="utf-8")
    cli("notify", "outbox", "edit", zh_id, "--body-file", tmp_path / "body.txt", now="2025-04-08T11:00")
    edited = audit_rows(cli.db, action="notification_edited")
    assert len(edited) == 1 and "原因：学会年检未通过" in edited[0].payload and "补交" in edited[0].payload
    cli("notify", "outbox", "release", "--id", zh_id, now="2025-04-08T11:00")
    assert "not held" in refused(cli, "notify", "outbox", "release", "--id", zh_id)
    cli("notify", "outbox", "discard", "--id", en_id, "--reason", "told by phone", now="2025-04-08T11:00")
    assert "notification_discarded" in {r.action for r in audit_rows(cli.db)}
    (zh,) = _send(cli, "2025-04-08T12:00")                # only the released one goes
    assert "请补交年检材料" in _text(zh) and "A0001" in zh["X-Starfund-Key"]
    assert {n["status"] for n in listing(cli)} == {"sent", "discarded"}
    # the letterhead, from the settings
    assert str(make_header(decode_header(zh["From"]))) == "市科协学会工作部 <xh@kexie.example.org>"
    assert parseaddr(zh["Reply-To"])[1] == "help@kexie.example.org"
    assert zh["Message-ID"].endswith("@kexie.example.org>")
    # the English letter, previewed: the reason in English, the English signature
    en = cli("templates", "preview", "formal_check_failed", "--application", "A0002").output
    assert "Reason: society did not pass the annual inspection" in en
    assert "Society Affairs, tel. 010-0000" in en and "年检未通过" not in en
    zh_preview = cli("templates", "preview", "formal_check_failed", "--application", "A0002",
                     "--language", "zh").output
    assert "原因：学会年检未通过" in zh_preview and "电话 010-0000" in zh_preview
    # a kind that does not apply to the application is refused, with the reason
    out = refused(cli, "templates", "preview", "awarded", "--application", "A0001")
    assert "awarded does not apply to A0001" in out and "ineligible" in out
    # the trail, readable: one line per event in either language, totals, zoned times
    zh_trail = cli("audit", "query", "--application", "A0001", "--limit", "2", "--page", "2").output
    assert "形式审查未通过 (close_declaration)；原因：学会年检未通过" in zh_trail
    assert "page 2 of" in zh_trail and "event(s); shown 3-4" in zh_trail
    en_trail = cli("audit", "query", "--application", "A0001", "--lang", "en").output
    assert "declared → ineligible (close_declaration); because: society did not pass" in en_trail
    assert "held message formal_check_failed" in en_trail and "edited" in en_trail
    (event,) = json_of(cli("audit", "query", "--trigger", "close_declaration", "--application",
                           "A0001", "--json"))
    assert event["at"] == "2025-04-08T00:00:00+08:00" and "学会年检未通过" in event["summary"]
    csv_lines = cli("audit", "query", "--trigger", "close_declaration", "--csv").output.splitlines()
    assert len(csv_lines) == 4 and ",2025-04-08T00:00:00+08:00," in csv_lines[1]
    r = cli("audit", "query", "--since", "2025-04-31", ok=False)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "--since: '2025-04-31' is not a valid time" in r.output and "accepted: an ISO 8601" in r.output


def test_review_assignment_gives_the_deadline_and_attaches_the_score_sheet(new_db, tmp_path,
                                                                           letterhead):
    cli = founded(Cli(new_db("review-letters")))
    assigned = in_review(cli, tmp_path, experts(4), applications(2, ("academic",)), per=3)
    sent = [m for m in _send(cli, "2025-04-08T10:00")
            if m["X-Starfund-Key"].startswith("review_assigned")]
    assert len(sent) == sum(len(v) for v in assigned.values()) == 6
    mail = next(m for m in sent if m["X-Starfund-Key"].endswith("expert:E001"))
    body = _text(mail)
    assert "2025-05-06 17:00" in body and "https://portal.example.org/expert" in body
    (sheet,) = [p for p in mail.walk() if p.get_filename()]
    assert sheet.get_filename() == f"score-sheet-{CALL}-E001.xlsx"
    ws = openpyxl.load_workbook(io.BytesIO(sheet.get_payload(decode=True)))["scores"]
    rows = [r for r in ws.iter_rows(min_row=2, values_only=True)]
    assert {r[0] for r in rows} == {"E001"} and {r[1] for r in rows} == {
        app for app, who in assigned.items() if "E001" in who}
