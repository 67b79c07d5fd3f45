"""Personal data under PIPL: the register covers every column, the trail seals personal values,
a person is exported and then erased everywhere while `audit verify --anchors` still passes."""
from __future__ import annotations

import json
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from portal import ATTACHMENTS, pdf_bytes
from worlds import (
    ADMIN,
    AUDITOR,
    call_file,
    fingerprint,
    json_of,
    proposed,
)

from lifecycle.core import clock, personal
from lifecycle.core.db import make_engine, resolve_url
from lifecycle.core.models import Base

NAME, PHONE, EMAIL = "张伟", "13912345678", "s1@example.org"
"""The person: S001's contact (S001's mailbox is theirs), who files an objection under their
real name and phone, and uploads a file named after themself."""
PERSON = "account:zhang-contact"
LATE = "2025-late"


def test_the_register_classifies_every_column_of_every_table():
    declared = {h.where for h in personal.PERSONAL if ":" not in h.where}
    for table in Base.metadata.sorted_tables:
        plain = set(personal.NOT_PERSONAL.get(table.name, "").split())
        for c in table.columns:
            where = f"{table.name}.{c.name}"
            assert (where in declared) != (c.name in plain), (
                f"{where} must be declared exactly once: in personal.PERSONAL if it can hold "
                "personal information, else in personal.NOT_PERSONAL")
    columns = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns}
    assert declared <= columns, declared - columns
    assert all(h.retention in personal.RETENTION for h in personal.PERSONAL)


def test_docs_privacy_is_generated_from_the_register():
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "docs" / "make_privacy.py"), "--check"],
                         capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr


def _scan(db: str, needles: list[str], *folders: Path) -> list[str]:
    """Where any of `needles` is still held: every row of every table, the SQLite files
    themselves (database and write-ahead log), and the files under `folders`."""
    found = []
    forms = {n: (n, n.encode().hex()) for n in needles}
    for table, rows in fingerprint(db).items():
        text = "\n".join(map(str, rows))
        found += [f"{table}: {n}" for n, fs in forms.items() if any(f in text for f in fs)]
        if not resolve_url(db).startswith("sqlite"):
            continue
        with closing(sqlite3.connect(resolve_url(db).split(":///", 1)[1])) as conn:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for v in row:
                    if isinstance(v, bytes):
                        found += [f"{table} (bytes): {n}" for n in needles if n.encode() in v]
    path = resolve_url(db).split(":///", 1)[1] if resolve_url(db).startswith("sqlite") else None
    files = [Path(path), Path(path + "-wal")] if path else []
    for folder in folders:
        files += [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        if p.exists():
            data = p.read_bytes()
            found += [f"{p.name}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.fixture
def person(cli, tmp_path):
    """The notice of six applications is open; S001's contact has an account with S001's
    mailbox, declares in a second call with an upload, objects to A0006 under their name and
    phone (in the engine, as the portal does), and the outbox is delivered to files."""
    from lifecycle.acts import drafts, objections

    proposed(cli, tmp_path)
    cli("user", "add", "zhang-contact", "--role", "society", "--society", "S001",
        "--email", EMAIL, now="2025-05-10T11:00")
    late = call_file(tmp_path, {**ATTACHMENTS, "calendar": {
        "declaration_opens": "2025-05-01T09:00:00", "declaration_closes": "2025-05-30T17:00:00",
        "review_due": "2025-06-20T17:00:00", "assessment_due": "2025-12-20T17:00:00"}},
        call_id=LATE)
    cli("call", "create", late, now="2025-05-10T11:00")
    e = make_engine(cli.db)
    try:
        with clock.frozen("2025-05-11T10:00"), e.begin() as conn:
            app = drafts.declare(conn, LATE, {"category": "academic", "title": "学术年会",
                                              "requested_amount": 30000, "summary": "摘要"},
                                 "zhang-contact")
            drafts.attach(conn, app, "application_form", f"{NAME}-申报书.pdf",
                          pdf_bytes(f"{NAME} {PHONE}"), "zhang-contact")
            objections.file(conn, "A0006", NAME, PHONE, "预算与往年重复", "zhang-contact")
    finally:
        e.dispose()
    outbox = tmp_path / "outbox"
    cli("notify", "send", "--outbox", outbox, now="2025-05-11T11:00")
    assert any(EMAIL in p.read_text(encoding="utf-8", errors="replace")
               for p in outbox.glob("*.eml")), "the person got no mail to erase"
    return outbox


def test_a_person_is_exported_then_erased_everywhere_and_the_trail_still_verifies(
        cli, tmp_path, person):
    outbox = person
    # the trail holds none of it in clear, even before the erasure: sealed under their key
    events = json_of(cli("audit", "query", "--trigger", "objection_file", "--json"))
    assert events[0]["payload"]["by"] == NAME   # opened for a reader holding the key
    assert events[0]["payload"]["contact"] == PHONE     # an approver decides objections
    seen = json_of(cli("audit", "query", "--trigger", "objection_file", "--json",
                       actor=AUDITOR))
    assert seen[0]["payload"]["by"] == NAME and seen[0]["payload"]["contact"] != PHONE
    raw = [r for t, rows in fingerprint(cli.db).items() if t == "audit_events" for r in rows]
    assert [r for r in raw if NAME in str(r) or PHONE in str(r) or EMAIL in str(r)] == []

    anchors = tmp_path / "anchors"
    cli("audit", "anchor", "--dir", anchors, "--no-mail", actor=AUDITOR)

    # export: everything held about them, readable, with their files
    out = tmp_path / "zhang.zip"
    r = json_of(cli("person", "export", PERSON, "--out", out, "--json"))
    assert r["objections"] == 1 and r["attachments"] == 1 and r["messages"] >= 1
    with zipfile.ZipFile(out) as z:
        data = json.loads(z.read("person.json"))
        html = z.read("person.html").decode()
        names = z.namelist()
    assert data["accounts"][0]["email"] == EMAIL
    assert data["objections"][0]["filed_by"] == NAME and data["objections"][0]["contact"] == PHONE
    assert any(n.startswith("files/attachment-") and NAME in n for n in names)
    filed = [e for e in data["audit_events"] if e["action"] == "objection_file"]
    assert filed and filed[0]["payload"]["contact"] == PHONE
    assert NAME in html and PHONE in html and EMAIL in html

    # an open objection holds the data: refused with why, nothing changed
    before = fingerprint(cli.db)
    held = cli("person", "erase", PERSON, "--reason", "PIPL request 2025-001", ok=False)
    assert held.exit_code == 1 and "objection 1 against A0006 is still open" in held.output
    assert fingerprint(cli.db) == before
    cli("objection", "resolve", "1", "--dismiss", "--reason", "budget checked",
        now="2025-05-12")

    # nobody erases themself; a reason must not repeat what it erases
    cli("user", "add", "approver-two", "--role", "approver", now="2025-05-12")
    before = fingerprint(cli.db)
    named = cli("person", "erase", PERSON, "--reason", f"{NAME} asked", ok=False)
    assert named.exit_code == 1 and "the reason names a value being erased" in named.output
    assert fingerprint(cli.db) == before

    r = json_of(cli("person", "erase", PERSON, "--reason", "PIPL request 2025-001",
                    "--outbox", outbox, "--json", now="2025-05-13"))
    assert r["objections"] == 1 and r["attachments"] == 1 and r["trail_keys"] >= 2
    assert r["files"] >= 1

    left = _scan(cli.db, [NAME, PHONE, EMAIL], outbox)
    assert left == [], left
    verified = cli("audit", "verify", "--anchors", anchors, ok=False)
    assert verified.exit_code == 0, verified.output
    assert "anchors: 1 of 1 held" in verified.output

    # pages and exports say where a value was
    events = json_of(cli("audit", "query", "--trigger", "objection_file", "--json"))
    assert events[0]["payload"]["by"] == events[0]["payload"]["contact"] == "已删除/erased"
    erased = json_of(cli("audit", "query", "--trigger", "person_erase", "--json"))
    assert len(erased) == 1 and erased[0]["payload"]["person"] == PERSON

    # again, or an export of the erased: refused, nothing changed
    before = fingerprint(cli.db)
    again = cli("person", "erase", PERSON, "--reason", "again", ok=False)
    assert again.exit_code == 1 and "was erased already" in again.output
    gone = cli("person", "export", PERSON, "--out", tmp_path / "again.zip", ok=False)
    assert gone.exit_code == 1 and "was erased on 2025-05-13" in gone.output
    assert not (tmp_path / "again.zip").exists()
    assert fingerprint(cli.db) == before


def test_bad_person_requests_change_nothing(cli, tmp_path):
    before = fingerprint(cli.db)
    for args, message in [
            (("export", "zhang", "--out", tmp_path / "x.zip"), "names no person"),
            (("export", "account:nobody", "--out", tmp_path / "x.zip"), "no account 'nobody'"),
            (("erase", "expert:E999", "--reason", "r"), "no expert 'E999'"),
            (("erase", "objector:x", "--reason", "r"), "objection's number"),
            (("erase", f"account:{ADMIN}", "--reason", "r"), "nobody erases their own")]:
        r = cli("person", *args, ok=False)
        assert r.exit_code == 1 and message in r.output, (args, r.output)
    r = cli("person", "erase", "account:" + AUDITOR, "--reason", "r", actor=AUDITOR, ok=False)
    assert r.exit_code == 1 and "may not erase a person's data" in r.output
    assert fingerprint(cli.db) == before
    assert not (tmp_path / "x.zip").exists()


def test_account_names_stay_pseudonyms(cli):
    for name in ("zhang@example.org", "13912345678"):
        r = cli("user", "add", name, "--role", "officer", ok=False)
        assert r.exit_code == 1 and "pseudonyms" in r.output


def test_a_funded_projects_uploader_is_held_until_the_finance_period_ends(new_db, tmp_path):
    """S005's contact uploaded the 申报书 of a project that was then funded: the upload is the
    project's record, so erasing them is refused with the date it becomes possible."""
    import portal
    from worlds import Cli

    db = new_db("starfund", world=portal.IN_REVIEW)
    cli = Cli(db)
    app = f"{portal.CALL}-00001"
    sheet = tmp_path / "scores.csv"
    sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                     f"E001,{app},30,25,15,20,10\nE002,{app},29,24,15,19,10\n", encoding="utf-8")
    cli("review", "import", portal.CALL, sheet, now="2025-04-21", actor="coord-zhou")
    cli("advance", portal.CALL, "close_review", now="2025-05-07", actor="coord-zhou")
    for trigger, at in (("rank", "2025-05-08"), ("propose", "2025-05-09"),
                        ("open_notice", "2025-05-09"), ("close_notice", "2025-05-20"),
                        ("fund", "2025-05-21")):
        cli("advance", portal.CALL, trigger, now=at, actor="approver-wang")
    before = fingerprint(db)
    r = cli("person", "erase", "account:s005", "--reason", "request 9", now="2026-03-01",
            actor="approver-wang", ok=False)
    assert r.exit_code == 1, r.output
    assert (f"the uploads to {app} are records of a funded project, kept until 2035-12-30"
            in r.output), r.output
    assert fingerprint(db) == before
    ok = json_of(cli("person", "erase", "account:s005", "--reason", "request 9", "--dry-run",
                     "--json", now="2036-01-02", actor="approver-wang"))
    assert ok["dry_run"] is True and ok["attachments"] == 1
    assert fingerprint(db) == before


def test_a_signed_in_contact_downloads_their_own_data_and_nobody_elses(new_db):
    import io

    import portal
    from portal import client, csrf_of, login

    db = new_db("starfund", world=portal.IN_REVIEW)
    c = client(db)
    login(c, "s005")
    home = c.get("/society").text
    assert 'action="/me/data.zip"' in home
    r = c.post("/me/data.zip", data={"csrf": csrf_of(c, "/society")})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        data = json.loads(z.read("person.json"))
        names = z.namelist()
    assert data["person"] == "account:s005" and [a["name"] for a in data["accounts"]] == ["s005"]
    assert any(n.startswith("files/attachment-") for n in names)   # S005's 申报书
    assert all(a["uploaded_by"] == "s005" for a in data["attachments"])
    forged = c.post("/me/data.zip", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    anonymous = client(db).post("/me/data.zip", data={"csrf": "x"})
    assert anonymous.status_code == 403
