"""A whole round in a real browser (Debian's chromium, driven by Playwright): a society
declares online with its 申报书, staff run the formal check, an expert scores online, staff
rank and publish the notice, the public page shows the proposed award, another society files
an objection with evidence. Screenshots of the main pages go to test-output/portal/<backend>/
(Chinese text must render: look at them)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import portal
import pytest
import system
from databases import backend
from portal import CALL, PASSWORD, served
from worlds import STAR_CALL, Cli

from lifecycle.core import clock
from web import processing_rules

CHROMIUM = system.CHROMIUM
OUT = Path(__file__).resolve().parent.parent / "test-output" / "portal"

pytestmark = pytest.mark.skipif(bool(system.missing("chromium")),
                                reason=system.missing("chromium") or "")


def RULES(url: str) -> bool:  # noqa: N802 (a URL matcher, passed as wait_for_url's pattern)
    """The rules page, with where to go after agreeing."""
    return "/privacy?next=" in url


def _at(when: str) -> None:
    clock.set_now(when)


def _login(context, base: str, name: str):
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card button[type=submit]")
    return page


def _advance(page, base: str, trigger: str) -> str:
    """Staff fire a trigger from the call's dashboard: the dry run first, then confirm."""
    page.goto(f"{base}/staff/call/{CALL}")
    page.select_option("select[name=trigger]", trigger)
    page.get_by_role("button", name="预演（不写入）", exact=True).click()
    page.wait_for_load_state()
    assert "预演" in page.inner_text("main")
    page.click("button.primary")
    return _flash(page)


def _flash(page) -> str:
    page.wait_for_load_state()
    return page.inner_text("p.flash")


def test_a_whole_round_in_the_browser(new_db, tmp_path):
    from playwright.sync_api import sync_playwright

    db = new_db("starfund", world=portal.PORTAL)
    shots = OUT / backend()
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    cli = Cli(db)
    pdf = tmp_path / "申报书.pdf"
    pdf.write_bytes(portal.pdf_bytes("学会学术年会"))
    evidence = tmp_path / "evidence.pdf"
    evidence.write_bytes(portal.pdf_bytes("evidence"))
    _at(portal.OPEN)
    with served(db) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            # 1. a society declares online, is refused without its 申报书, uploads it, submits
            s = _login(browser.new_context(locale="zh-CN"), base, "s005")
            assert s.url.endswith("/society")
            assert "2025年度学会重点活动项目资助" in s.inner_text("main")
            s.screenshot(path=shots / "society-home.png", full_page=True)
            s.click("text=在线申报")
            s.select_option("select[name=category]", "academic")
            s.fill("input[name=title]", "学会学术年会")
            s.fill("input[name=requested_amount]", "50000")
            s.fill("textarea[name=summary]", "年会摘要")
            s.get_by_role("button", name="保存草稿", exact=True).click()
            s.wait_for_url("**/app/*")
            app = s.url.rsplit("/", 1)[1]
            assert app == f"{CALL}-00001" and "草稿" in _flash(s)
            s.fill("form[action$='/edit'] input[name=requested_amount]", "48000")
            s.get_by_role("button", name="保存", exact=True).click()
            assert "申请金额" in _flash(s) and "48,000" in s.inner_text("dl.fields")
            s.get_by_role("button", name="提交申报", exact=True).click()
            assert "缺少必需的附件：申报书" in _flash(s)
            s.select_option("select[name=kind]", "application_form")
            s.set_input_files("input[name=file]", str(pdf))
            s.get_by_role("button", name="上传", exact=True).click()
            assert "申报书.pdf" in s.inner_text("main")
            s.get_by_role("button", name="提交申报", exact=True).click()
            assert s.get_attribute("[data-state]", "data-state") == "declared"
            assert "已申报" in s.inner_text("main")
            s.screenshot(path=shots / "society-application.png", full_page=True)
            s.goto(f"{base}/society/declare/{CALL}")  # a second draft, then taken back
            s.select_option("select[name=category]", "policy")
            s.fill("input[name=title]", "政策研究")
            s.fill("input[name=requested_amount]", "10000")
            s.get_by_role("button", name="保存草稿", exact=True).click()
            s.wait_for_url("**/app/*")
            s.get_by_role("button", name="撤回申报", exact=True).click()
            assert "已撤回" in _flash(s)
            assert s.get_attribute("[data-state]", "data-state") == "withdrawn"

            # 2. staff run the formal check from the dashboard: dry run first, then confirm
            _at("2025-04-08T09:00")
            o = _login(browser.new_context(locale="zh-CN"), base, "officer-li")
            o.click(f"a[href='/staff/call/{CALL}']")
            assert "截止申报并形式审查：移动 1 项" in _advance(o, base, "close_declaration")
            o.wait_for_function("() => [...document.querySelectorAll('.charts img')]"
                                ".every(i => i.complete && i.naturalWidth > 0)")  # the charts drew
            o.screenshot(path=shots / "staff-dashboard.png", full_page=True)

            # 3. the coordinator assigns the two experts (command line)
            cli("review", "assign", CALL, now="2025-04-09", actor="coord-zhou")
            cli("advance", CALL, "start_review", now="2025-04-09", actor="coord-zhou")

            # 4. an expert scores online: the range is enforced as it types, drafts, submits
            _at("2025-04-20T10:00")
            e = _login(browser.new_context(locale="zh-CN"), base, "e001")
            assert e.url.endswith("/expert") and app in e.inner_text("main")
            e.click("text=评分 >> nth=-1")
            inputs = e.locator("form.scores input[type=number]")
            first = inputs.nth(0)
            first.fill("999")
            assert first.evaluate("el => el.validity.rangeOverflow")
            first.fill("20")
            e.get_by_role("button", name="保存草稿", exact=True).click()
            assert "草稿已保存" in _flash(e)
            assert e.input_value("form.scores input[type=number] >> nth=0") == "20"
            for i in range(inputs.count()):
                inputs.nth(i).fill(inputs.nth(i).get_attribute("max"))
            e.screenshot(path=shots / "expert-score.png", full_page=True)
            e.get_by_role("button", name="提交评分", exact=True).click()
            assert "评分已提交" in _flash(e)
            # the other expert answered on paper; the coordinator enters it
            sheet = tmp_path / "e002.csv"
            sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                             f"E002,{app},30,25,15,20,10\n", encoding="utf-8")
            cli("review", "import", CALL, sheet, now="2025-04-21", actor="coord-zhou")

            # 5. review closes; the leadership ranks, proposes and opens the notice, all online
            _at("2025-05-07T09:00")
            co = _login(browser.new_context(locale="zh-CN"), base, "coord-zhou")
            assert "结束评审：移动 1 项" in _advance(co, base, "close_review")
            ap = _login(browser.new_context(locale="zh-CN"), base, "approver-wang")
            _at("2025-05-08T09:00")
            assert "汇总排序：移动 1 项" in _advance(ap, base, "rank")
            _at("2025-05-09T09:00")
            assert "审定拟资助名单：移动 1 项" in _advance(ap, base, "propose")
            _at("2025-05-10T10:00")
            assert "发布公示：移动 1 项" in _advance(ap, base, "open_notice")

            # 6. the public page shows the proposed award, with no login
            _at("2025-05-11T10:00")
            pub = browser.new_context(locale="zh-CN").new_page()
            pub.goto(f"{base}/")
            pub.click(f"a[href='/notice/{CALL}']")
            text = pub.inner_text("main")
            assert "学会学术年会" in text and "市测试5学会" in text and "48,000" in text
            assert "公示期" in text and "如何提出异议" in text
            pub.screenshot(path=shots / "public-notice.png", full_page=True)
            pub.click("text=English")
            assert "Proposed amount (yuan)" in pub.inner_text("main")
            pub.screenshot(path=shots / "public-notice-en.png", full_page=True)

            # 7. another society objects, with evidence
            o6 = _login(browser.new_context(locale="zh-CN"), base, "s006")
            o6.goto(f"{base}/notice/{CALL}")
            o6.click("text=提出异议")
            o6.fill("input[name=by]", "赵六")
            o6.fill("input[name=contact]", "13900000000")
            o6.fill("textarea[name=reason]", "预算与往年重复")
            o6.set_input_files("input[name=evidence]", str(evidence))
            o6.get_by_role("button", name="提交异议", exact=True).click()
            o6.wait_for_load_state()
            assert "已受理" in _flash(o6)
            assert json.loads(cli("show", app, "--json").output)["application"]["state"] == \
                "objection_raised"

            # 8. the objection is dismissed; the notice closes, the project is funded, and at
            # its checkpoint the society uploads its progress report online
            cli("objection", "resolve", "1", "--dismiss", "--reason", "预算不重复",
                now="2025-05-12T10:00", actor="approver-wang")
            _at("2025-05-19T09:00")
            assert "公示结束并立项：移动 1 项" in _advance(ap, base, "close_notice")
            assert "确认资助：移动 1 项" in _advance(ap, base, "fund")
            _at("2025-12-01T09:00")
            assert "启动绩效考核：移动 1 项" in _advance(o, base, "open_assessment")
            s.goto(f"{base}/app/{app}")
            s.set_input_files("form[action$='/report'] input[name=file]", str(pdf))
            s.get_by_role("button", name="提交报告", exact=True).click()
            assert "报告" in _flash(s)
            s.screenshot(path=shots / "society-report.png", full_page=True)
            assert "消息" in s.inner_text("main")  # the society's messages are on its page
        finally:
            browser.close()
    shown = json.loads(cli("show", app, "--json").output)
    assert shown["application"]["state"] == "assessment_due"
    assert [a["report"] for a in shown["assessments"]] == ["申报书.pdf"]
    assert [(o["by"], o["status"]) for o in shown["objections"]] == [("赵六", "dismissed")]
    actors = {h["action"]: h["actor"] for h in shown["history"]}
    assert actors["declaration_online"] == "s005" and actors["attachment"] == "s005"
    assert actors["objection_file"] == "s006"
    submitted = [h for h in shown["history"] if h["to_state"] == "declared"]
    assert submitted[0]["actor"] == "s005"
    assert [r["total"] for r in shown["reviews"]] == [100.0, 100.0]
    assert all((shots / f).stat().st_size > 10_000 for f in (
        "society-home.png", "society-application.png", "staff-dashboard.png",
        "expert-score.png", "public-notice.png"))


def test_experts_staff_and_the_star_programme_in_the_browser(new_db, tmp_path):
    """An expert declares a conflict; the coordinator reminds the expert who still owes
    scores; the auditor filters the trail and downloads it as CSV; a society fills its star
    self-evaluation online, in English."""
    from playwright.sync_api import sync_playwright

    db = new_db("starfund", world=portal.IN_REVIEW)
    shots = OUT / backend()
    shots.mkdir(parents=True, exist_ok=True)
    cli = Cli(db)
    cli("call", "create", STAR_CALL, now="2025-05-01")
    _at(portal.REVIEWING)
    with served(db) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            e = _login(browser.new_context(locale="zh-CN"), base, "e002")
            e.click(f"tr:has-text('{CALL}-00002') a")
            e.click("text=利益冲突：申请回避")
            e.fill("input[name=reason]", "同一单位")
            e.get_by_role("button", name="声明回避", exact=True).click()
            assert "已声明回避" in _flash(e) and f"{CALL}-00002" not in e.inner_text("table")

            c = _login(browser.new_context(locale="zh-CN"), base, "coord-zhou")
            c.goto(f"{base}/staff/call/{CALL}")
            c.click("form[action$='/remind/E001'] button")
            assert "E001" in _flash(c)

            a = _login(browser.new_context(locale="zh-CN", accept_downloads=True), base,
                       "auditor-sun")
            a.click("text=审计日志")
            a.select_option("select[name=action]", "recuse")
            a.get_by_role("button", name="筛选", exact=True).click()
            rows = a.inner_text("table.trail tbody")
            assert "e002" in rows and "声明回避" in rows and "发送提醒" not in rows
            a.screenshot(path=shots / "staff-audit.png", full_page=True)
            with a.expect_download() as got:
                a.click("text=CSV")
            text = Path(got.value.path()).read_text(encoding="utf-8-sig")
            assert text.startswith("seq,") and "recuse" in text and "remind" not in text

            _at("2025-06-10T10:00")
            s = _login(browser.new_context(locale="en-US"), base, "s006")
            s.click("text=English")
            s.click("text=Self-evaluate online")
            inputs = s.locator("form.scores input[type=number]")
            for i in range(inputs.count()):
                inputs.nth(i).fill(inputs.nth(i).get_attribute("max"))
            s.get_by_role("button", name="Save the self-evaluation", exact=True).click()
            assert "Self-evaluation saved as a draft" in _flash(s)
            assert s.url.endswith("/app/2025-star-S006")
            s.screenshot(path=shots / "society-star-en.png", full_page=True)  # (after: a full-page
            # screenshot before a click below the fold made Chromium drop the click)
        finally:
            browser.close()
    messages = json.loads(cli("notify", "list", "--json").output)
    assert [m["kind"] for m in messages].count("remind_review") == 1


def test_the_processing_rules_before_first_use_and_again_when_they_change(
        new_db, tmp_path, monkeypatch):
    """A society's contact who never used the portal signs in and meets the processing rules
    (个人信息处理规则) first, even when it goes straight for the declaration form; it reads
    them in English too, agrees, and declares (the form shows the rules again); when a new
    version comes into force, its next page is the new rules, and it agrees again to go on."""
    from playwright.sync_api import sync_playwright

    db = new_db("starfund", world=portal.PORTAL)
    portal.add_account(db, "s007", ("society",), society="S007")
    shots = OUT / backend()
    shots.mkdir(parents=True, exist_ok=True)
    pdf = tmp_path / "申报书.pdf"
    pdf.write_bytes(portal.pdf_bytes("学会科普周"))
    version = processing_rules.VERSION
    _at(portal.OPEN)
    with served(db) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            s = _login(browser.new_context(locale="zh-CN"), base, "s007")
            s.wait_for_url(RULES)
            assert "使用平台前，请阅读并同意" in s.inner_text("main")
            assert s.inner_text("article.rules .version") == version
            assert "异议人的联系方式仅负责审定和处理异议" in s.inner_text("article.rules")
            s.screenshot(path=shots / "rules.png", full_page=True)
            s.goto(f"{base}/society/declare/{CALL}")  # not before the rules
            s.wait_for_url(RULES)
            s.click("text=English")  # the language switch works before agreeing
            assert "Personal information processing rules" in s.inner_text("h1")
            s.click("text=中文")
            s.get_by_role("button", name="同意并继续", exact=True).click()
            s.wait_for_url(f"**/society/declare/{CALL}")
            assert f"已同意个人信息处理规则（{version} 版）" in _flash(s)
            s.click("details.rules-before summary")  # the rules again, before declaring
            assert "个人信息处理者" in s.inner_text("details.rules-before")
            s.select_option("select[name=category]", "popsci")
            s.fill("input[name=title]", "学会科普周")
            s.fill("input[name=requested_amount]", "30000")
            s.fill("textarea[name=summary]", "三场讲座")
            s.get_by_role("button", name="保存草稿", exact=True).click()
            s.wait_for_url("**/app/*")
            app = s.url.rsplit("/", 1)[1]
            s.select_option("select[name=kind]", "application_form")
            s.set_input_files("input[name=file]", str(pdf))
            s.get_by_role("button", name="上传", exact=True).click()
            s.wait_for_load_state()

            # the rules change while the draft's page is open: its submission waits for them
            new = portal.new_rules(monkeypatch, tmp_path)
            s.get_by_role("button", name="提交申报", exact=True).click()
            s.wait_for_url(RULES)
            assert "请先阅读并同意" in _flash(s)
            text = s.inner_text("main")
            assert "个人信息处理规则已更新" in text and version in text and new in text
            assert "评审专家的银行账户仅财务人员可见" in text
            s.screenshot(path=shots / "rules-changed.png", full_page=True)
            s.get_by_role("button", name="同意并继续", exact=True).click()
            s.wait_for_url(f"**/app/{app}")
            s.get_by_role("button", name="提交申报", exact=True).click()
            s.wait_for_load_state()
            assert s.get_attribute("[data-state]", "data-state") == "declared"

            # staff are not asked; the public notice's footer links the rules for everyone
            o = _login(browser.new_context(locale="zh-CN"), base, "officer-li")
            assert o.url.endswith("/staff")
            o.click("footer a[href='/privacy']")
            assert new in o.inner_text("article.rules .version")
            assert o.locator("form[action='/privacy/agree']").count() == 0
        finally:
            browser.close()
    events = json.loads(Cli(db)("audit", "query", "--trigger", "consent", "--actor", "s007",
                                "--json").output)
    assert [e["payload"] for e in events] == [{"account": "s007", "rules_version": version},
                                              {"account": "s007", "rules_version": new}]
    assert all(e["call_id"] is None and e["application_id"] is None for e in events)
