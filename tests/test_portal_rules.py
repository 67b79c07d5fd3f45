"""The processing rules (个人信息处理规则) on the portal, through HTTP with a TestClient: a
society contact or expert meets them before any other page and agrees (audited with the
account and version only), a new version asks again, staff and the public read them without
being asked; and who sees an objection's contact (the approvers who decide objections) while
the objector's name stays on the 公示 procedure's pages."""
from __future__ import annotations

import csv
import io
import json
import re

import portal
import pytest
from databases import World
from portal import CALL, client, csrf_of, login
from portal import flash_after as _flash
from sqlalchemy import func, select
from worlds import Cli

from lifecycle.acts import consents
from lifecycle.acts.objections import HIDDEN
from lifecycle.core import clock
from lifecycle.core.db import make_engine
from lifecycle.core.models import Application, AuditEvent, Consent
from web import i18n, processing_rules

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"
NAME, PHONE = "赵六", "13900000000"
STAFF = ("officer-li", "coord-zhou", "approver-wang", "finance-chen", "auditor-sun")


def _count(db: str, model) -> int:
    e = make_engine(db)
    try:
        with e.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar()
    finally:
        e.dispose()


def _consent_events(db: str) -> list[dict]:
    return json.loads(Cli(db)("audit", "query", "--trigger", "consent", "--json").output)


def _rules_page(r) -> str:
    assert r.status_code == 303 and r.headers["location"].startswith("/privacy?next="), \
        (r.status_code, r.headers.get("location"))
    return r.headers["location"]


def test_the_rules_come_first_then_again_when_their_version_changes(new_db, tmp_path,
                                                                     monkeypatch):
    db = new_db("starfund", world=portal.PORTAL)
    portal.add_account(db, "s007", ("society",), society="S007")
    portal.add_account(db, "e002-new", ("expert",), expert="E002")
    clock.set_now(portal.OPEN)
    version = processing_rules.VERSION
    # anyone may read them, without logging in, in either language, and is asked nothing
    public = client(db)
    page = public.get("/privacy").text
    assert "个人信息处理规则" in page and version in page and "/privacy/agree" not in page
    assert "联系方式仅负责审定和处理异议的领导小组成员" in page
    public.get("/lang/en")
    assert "Personal information processing rules" in public.get("/privacy").text

    s = client(db)
    r = login(s, "s007")
    assert r.headers["location"] == "/privacy?next=/society"  # straight to the rules
    for path in ("/society", f"/society/declare/{CALL}", "/", "/expert"):
        assert _rules_page(s.get(path)) == "/privacy?next=" + path
    assert s.get("/static/style.css").status_code == 200
    assert s.get("/lang/en").headers["location"] == "/"  # the language switch still works
    s.get("/lang/zh")
    # a form sent before agreeing is not carried out: nothing is written
    token = csrf_of(s, "/privacy")
    events = _count(db, AuditEvent)
    r = s.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "popsci",
                                                 "title": "科普", "requested_amount": "9000"},
               headers={"referer": f"http://testserver/society/declare/{CALL}"})
    assert _rules_page(r) == f"/privacy?next=/society/declare/{CALL}"
    assert "请先阅读并同意" in _flash(s, r)
    assert _count(db, AuditEvent) == events and _count(db, Application) == 0
    # the rules page: the text, the version, the button (and a way out)
    page = s.get(f"/privacy?next=/society/declare/{CALL}").text
    assert "使用平台前，请阅读并同意" in page and "同意并继续" in page and "不同意，退出" in page
    form_version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    assert form_version == version
    # agreeing to another version than the one in force is refused, nothing written
    r = s.post("/privacy/agree", data={"csrf": token, "version": "2020-01-01"},
               headers={"referer": "http://testserver/privacy"})
    assert version in _flash(s, r) and _count(db, Consent) == 4  # the world's four only
    r = s.post("/privacy/agree", data={"csrf": token, "version": version,
                                       "next": f"/society/declare/{CALL}"})
    assert r.headers["location"] == f"/society/declare/{CALL}"
    assert "已同意" in _flash(s, r)
    form = s.get(f"/society/declare/{CALL}").text  # the declaration shows the rules again
    assert "rules-before" in form and re.search(r"您已于 [0-9-]+ [0-9:]+ 同意", form)
    assert "项目负责人" in form and "/privacy" in form
    r = s.post("/privacy/agree", data={"csrf": token, "version": version})
    assert r.status_code == 303 and len(_consent_events(db)) == 5  # once per version
    mine = [e for e in _consent_events(db) if e["actor"] == "s007"]
    assert [e["payload"] for e in mine] == [{"account": "s007", "rules_version": version}]

    # an expert too
    e = client(db)
    assert login(e, "e002-new").headers["location"] == "/privacy?next=/expert"
    assert _rules_page(e.get("/expert"))

    # staff are not asked (employees: consent is not the basis), may not "agree", read them
    o = client(db)
    assert login(o, "officer-li").headers["location"] == "/staff"
    assert o.get("/staff").status_code == 200
    page = o.get("/privacy").text
    assert version in page and "/privacy/agree" not in page
    assert 'href="/privacy"' in o.get("/staff").text  # every page's footer links them
    r = o.post("/privacy/agree", data={"csrf": csrf_of(o, "/staff"), "version": version})
    assert r.status_code == 403 and "无权进行此项操作" in r.text

    # a new version: everyone asked is asked again, told what they agreed to before
    new = portal.new_rules(monkeypatch, tmp_path)
    r = s.get("/society")
    assert _rules_page(r) == "/privacy?next=/society"
    page = s.get(r.headers["location"]).text
    assert "已更新" in page and version in page and new in page
    assert "评审专家的银行账户仅财务人员可见" in page  # the new text
    assert o.get("/staff").status_code == 200  # staff still not asked
    r = s.post("/privacy/agree", data={"csrf": token, "version": new, "next": "/society"})
    assert r.headers["location"] == "/society" and s.get("/society").status_code == 200
    e_ = make_engine(db)
    with e_.connect() as conn:
        assert [h["version"] for h in consents.history(conn, "s007")] == [version, new]
    e_.dispose()
    assert _rules_page(client_of(db, "s005").get("/society"))  # the world's agreed the old


def client_of(db: str, account: str):
    c = client(db)
    login(c, account)
    return c


def test_a_submission_waits_for_the_rules_in_force(new_db, tmp_path, monkeypatch):
    """A draft's submit, sent after the rules changed, is not carried out: the rules first,
    then the same page, and the submission goes through."""
    db = new_db("starfund", world=portal.PORTAL)
    clock.set_now(portal.OPEN)
    s = client_of(db, "s005")
    token = csrf_of(s, "/society")
    r = s.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "popsci",
                                                 "title": "科普", "requested_amount": "9000",
                                                 "summary": "三场讲座"})
    app = r.headers["location"].rsplit("/", 1)[1]
    s.post(f"/app/{app}/attach", data={"csrf": token, "kind": "application_form"},
           files={"file": ("申报书.pdf", portal.pdf_bytes(), "application/pdf")})
    page = s.get(f"/app/{app}").text
    assert "申报书.pdf" in page and "rules-note" in page  # beside the submit button
    portal.new_rules(monkeypatch, tmp_path)
    r = s.post(f"/app/{app}/submit", data={"csrf": token},
               headers={"referer": f"http://testserver/app/{app}"})
    assert _rules_page(r) == f"/privacy?next=/app/{app}"
    shown = json.loads(Cli(db)("show", app, "--json").output)["application"]
    assert shown["state"] == "draft"
    clock.set_now(portal.OPEN)  # (the command line left the clock)
    r = s.post("/privacy/agree", data={"csrf": token, "version": portal.NEW_RULES,
                                       "next": f"/app/{app}"})
    assert r.headers["location"] == f"/app/{app}"
    r = s.post(f"/app/{app}/submit", data={"csrf": token})
    assert "已提交" in _flash(s, r)


def test_every_version_of_the_rules_is_written_in_every_language():
    """The document in force exists in each of the portal's languages, section for section,
    and its version is spelled as consents records it; raw HTML in it is not passed through."""
    sections = {}
    for lang in i18n.LANGS:
        text = processing_rules.path(lang).read_text(encoding="utf-8")
        sections[lang] = len(re.findall(r"^## ", text, re.M))
        assert "<table>" in processing_rules.html(lang)
    assert sections["zh"] == sections["en"] >= 8
    assert consents.VERSION.fullmatch(processing_rules.VERSION)
    for path in processing_rules.FOLDER.glob("*.md"):
        version, lang, _ = path.name.split(".")
        assert consents.VERSION.fullmatch(version) and lang in i18n.LANGS, path.name
        assert "<script" not in processing_rules.html(lang, version)


# --- an objection's contact ------------------------------------------------------------------

def _objected(db: str, tmp_path) -> None:
    """S005's and S006's projects in the notice; S006's contact objects to S005's, by name."""
    cli = Cli(db)
    sheet = tmp_path / "scores.csv"
    sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                     f"E001,{APP5},30,25,15,20,10\nE002,{APP5},29,24,15,19,10\n"
                     f"E001,{APP6},28,24,14,18,9\nE002,{APP6},27,23,14,18,9\n",
                     encoding="utf-8")
    cli("review", "import", CALL, sheet, now="2025-04-21", actor="coord-zhou")
    cli("advance", CALL, "close_review", now="2025-05-07", actor="coord-zhou")
    for trigger, at in (("rank", "2025-05-08"), ("propose", "2025-05-09"),
                        ("open_notice", "2025-05-09T10:00")):
        cli("advance", CALL, trigger, now=at, actor="approver-wang")
    from lifecycle.acts import objections

    e = make_engine(db)  # as the portal's objection form files it, under S006's account
    try:
        with clock.frozen("2025-05-10T10:00"), e.begin() as conn:
            objections.file(conn, APP5, NAME, PHONE, "预算与往年重复", "s006")
    finally:
        e.dispose()


OBJECTED = World("portal-objected", _objected, base=portal.IN_REVIEW)


@pytest.fixture
def objected(new_db):
    db = new_db("starfund", world=OBJECTED)
    clock.set_now("2025-05-11T10:00")
    return db


def test_an_objections_contact_is_for_the_approvers_who_decide_it(objected):
    db = objected
    seen = {}
    for account in STAFF:
        c = client_of(db, account)
        page = c.get(f"/app/{APP5}").text
        assert NAME in page, account  # the objector is named to every member of staff
        seen[account] = PHONE in page
        if not seen[account]:
            assert "仅审定人员可见" in page
    assert seen == {a: a == "approver-wang" for a in STAFF}  # objection.contact: approver
    # the trail, on the page and exported, as each reader of the trail may read it
    for account in ("officer-li", "auditor-sun", "approver-wang"):
        c = client_of(db, account)
        trail = c.get("/staff/audit?action=objection_file").text
        rows = list(csv.DictReader(io.StringIO(
            c.get("/staff/audit.csv?action=objection_file").content.decode("utf-8-sig"))))
        assert len(rows) == 1 and NAME in rows[0]["payload"] and NAME in trail
        shown = account == "approver-wang"
        assert (PHONE in trail, PHONE in rows[0]["payload"]) == (shown, shown), account
        assert shown or HIDDEN in rows[0]["payload"]
    # neither the society objected to, nor the objector's, nor the public, see the contact
    for account in ("s005", "s006"):
        c = client_of(db, account)
        for path in (f"/app/{APP5}", f"/app/{APP6}", f"/notice/{CALL}"):
            assert PHONE not in c.get(path).text
    notice = client(db).get(f"/notice/{CALL}").text
    assert PHONE not in notice and NAME not in notice and 'href="/privacy"' in notice
    # the command line answers the same: `objection list --json`
    cli = Cli(db)
    for account, contact in (("officer-li", HIDDEN), ("auditor-sun", HIDDEN),
                             ("approver-wang", PHONE)):
        rows = json.loads(cli("objection", "list", CALL, "--json", actor=account).output)
        assert [(r["filed_by"], r["contact"]) for r in rows] == [(NAME, contact)]
    assert cli("audit", "verify", actor="auditor-sun").exit_code == 0  # the trail untouched
