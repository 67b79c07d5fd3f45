"""What each kind of user does on the portal besides the browser round (through HTTP, with a
TestClient): edit and withdraw a draft, the star self-evaluation online, the expert's draft
and the server's range check, what a society may not see, staff's reminder, trail and exports."""
from __future__ import annotations

import csv
import io
import json
import re

import portal
import pytest
from portal import CALL, client, csrf_of, login
from portal import flash_after as _flash
from worlds import STAR_CALL, Cli

from lifecycle.core import clock

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"


@pytest.fixture
def reviewing(new_db):
    db = new_db("starfund", world=portal.IN_REVIEW)
    clock.set_now(portal.REVIEWING)
    return db


def test_a_society_edits_and_withdraws_its_draft_until_the_window_closes(new_db):
    db = new_db("starfund", world=portal.PORTAL)
    clock.set_now(portal.OPEN)
    c = client(db)
    login(c, "s005")
    token = csrf_of(c, "/society")
    r = c.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "popsci",
                                                 "title": "科普", "requested_amount": "90000"})
    app = r.headers["location"].rsplit("/", 1)[1]
    r = c.post(f"/app/{app}/edit", data={"csrf": token, "category": "popsci", "title": "科普进校园",
                                         "requested_amount": "40000", "summary": "三场讲座"})
    said = _flash(c, r)
    assert "项目名称" in said and "申请金额" in said
    page = c.get(f"/app/{app}").text
    assert "科普进校园" in page and "40,000" in page and "三场讲座" in page
    r = c.post(f"/app/{app}/edit", data={"csrf": token, "category": "popsci", "title": "x",
                                         "requested_amount": "-5"})
    assert "申请金额：应为正整数" in _flash(c, r)
    assert "科普进校园" in c.get(f"/app/{app}").text  # nothing changed
    r = c.post(f"/app/{app}/withdraw", data={"csrf": token})
    assert "已撤回" in _flash(c, r)
    assert 'data-state="withdrawn"' in c.get(f"/app/{app}").text
    clock.set_now("2025-04-08T09:00")
    r = c.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "popsci",
                                                 "title": "迟到", "requested_amount": "1000"})
    assert "已于 2025-04-07 17:00 截止" in _flash(c, r)
    history = json.loads(Cli(db)("show", app, "--json").output)["history"]
    assert [h["action"] for h in history][:3] == ["create", "declaration_online", "declaration_edit"]
    assert all(h["actor"] == "s005" for h in history[:4])


def test_a_society_fills_its_star_self_evaluation_online(new_db, tmp_path):
    db = new_db("starfund", world=portal.PORTAL)
    Cli(db)("call", "create", STAR_CALL, now="2025-05-01")
    clock.set_now("2025-06-10T10:00")
    c = client(db)
    login(c, "s006")
    assert "/society/star/2025-star" in c.get("/society").text
    form = c.get("/society/star/2025-star").text
    names = re.findall(r'name="(self_[^"]+)" type="number" min="0" max="([0-9.]+)"', form)
    assert len(names) > 5
    token = csrf_of(c, "/society")
    bad = {n: m for n, m in names} | {names[0][0]: str(float(names[0][1]) + 1)}
    r = c.post("/society/star/2025-star", data={"csrf": token, **bad})
    assert f"超出 0 至 {float(names[0][1]):g} 的范围" in _flash(c, r)
    r = c.post("/society/star/2025-star", data={"csrf": token, **dict(names)})
    assert r.headers["location"] == "/app/2025-star-S006"
    page = c.get("/app/2025-star-S006")
    assert page.status_code == 200 and "星级学会评定" in page.text
    shown = json.loads(Cli(db)("show", "2025-star-S006", "--json").output)
    assert shown["application"]["state"] == "draft"
    assert sum(s["self"] for s in shown["star_scores"]) == pytest.approx(
        sum(float(m) for _, m in names))


def test_an_expert_keeps_a_draft_and_the_server_checks_every_range(reviewing):
    c = client(reviewing)
    login(c, "e001")
    link = re.search(r'href="/review/(\d+)"', c.get("/expert").text).group(1)
    form = c.get(f"/review/{link}").text
    fields = re.findall(r'name="(score_[^"]+)" type="number" min="0" max="([0-9.]+)"', form)
    token = csrf_of(c, "/expert")
    over = {fields[0][0]: str(float(fields[0][1]) + 5)}
    r = c.post(f"/review/{link}", data={"csrf": token, "action": "save", **over})
    assert "超出 0 至" in _flash(c, r)
    r = c.post(f"/review/{link}", data={"csrf": token, "action": "submit",
                                        **dict(fields[:-1])})
    assert "请给出" in _flash(c, r)  # one criterion missing
    r = c.post(f"/review/{link}", data={"csrf": token, "action": "save", fields[0][0]: "7.5"})
    assert "草稿已保存" in _flash(c, r)
    assert 'value="7.5"' in c.get(f"/review/{link}").text
    r = c.post(f"/review/{link}", data={"csrf": token, "action": "submit", **dict(fields)})
    assert "已提交" in _flash(c, r)
    # the society sees where it stands, never who reviewed it nor a single score
    s = client(reviewing)
    login(s, "s005")
    page = s.get(f"/app/{APP5}").text
    assert "E001" not in page and "专家1" not in page and "专家评分" not in page
    assert "评审中" in page
    # the other expert sees its own work only
    e2 = client(reviewing)
    login(e2, "e002")
    assert "专家1" not in e2.get(f"/app/{APP5}").text


def test_staff_remind_an_expert_browse_the_trail_and_export_inert(reviewing, tmp_path):
    cli = Cli(reviewing)
    cli("society", "import", portal.write_csv(
        tmp_path / "evil.csv",
        [{"id": "S005", "name": "=HYPERLINK(\"http://x\")", "email": "s5@example.org"}]),
        now=portal.REVIEWING)
    clock.set_now(portal.REVIEWING)
    c = client(reviewing)
    login(c, "coord-zhou")
    page = c.get(f"/staff/call/{CALL}").text
    assert "/remind/E001" in page and "/remind/E002" in page
    r = c.post(f"/staff/call/{CALL}/remind/E001", data={"csrf": csrf_of(c, "/staff")})
    assert "E001" in _flash(c, r)
    messages = json.loads(cli("notify", "list", "--json").output)
    assert [m["kind"] for m in messages].count("remind_review") == 1
    a = client(reviewing)
    login(a, "auditor-sun")
    trail = a.get("/staff/audit?action=remind").text.split('<table class="trail', 1)[1]
    assert "coord-zhou" in trail and "发送提醒" in trail
    assert "在线申报" not in trail
    rows = list(csv.DictReader(io.StringIO(a.get("/staff/audit.csv?action=remind")
                                            .content.decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["actor"] == "coord-zhou"
    exported = c.get(f"/staff/call/{CALL}/applications.csv").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in exported and "\n=HYPERLINK" not in exported
    x = c.get(f"/staff/call/{CALL}/applications.xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(x.content)).active
    cells = [cell for row in ws.iter_rows() for cell in row if cell.value and
             str(cell.value).startswith("=HYPERLINK")]
    assert cells and all(cell.data_type == "s" for cell in cells)
    assert 'data-stage="declared">2<' in page  # the report's own funnel, on the dashboard
    svg = c.get(f"/staff/call/{CALL}/chart/funnel.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg") and "已申报" in svg.text
    assert svg.headers.get_list("content-security-policy") == [
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"]
    report = c.get(f"/staff/call/{CALL}/report.html")
    assert report.headers["content-disposition"].startswith("attachment;")
    assert "<svg" in report.text and "2025年度学会重点活动项目资助" in report.text
    notice = c.get(f"/staff/call/{CALL}/notice.xlsx")
    assert notice.status_code == 400 and "尚无公示" in notice.text
    awards = c.get(f"/staff/call/{CALL}/awards.pdf")
    assert awards.status_code == 400 and "尚无立项" in awards.text
    en = client(reviewing)
    login(en, "coord-zhou")
    en.get("/lang/en")
    assert "Reviews outstanding" in en.get(f"/staff/call/{CALL}").text
