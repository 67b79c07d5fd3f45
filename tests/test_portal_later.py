"""Later in the year on the portal: an expert declares a conflict, and a funded society
uploads its progress report at its checkpoint (checked by content)."""
from __future__ import annotations

import io
import json
import re

import portal
import system
from portal import CALL, client, csrf_of, login
from portal import flash_after as _flash
from worlds import Cli

from lifecycle.core import clock

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"


def test_an_expert_recuses_and_a_funded_society_reports(new_db, tmp_path):
    db = new_db("starfund", world=portal.IN_REVIEW)
    cli = Cli(db)
    clock.set_now(portal.REVIEWING)
    e2 = client(db)
    login(e2, "e002")
    page = e2.get("/expert").text
    link = re.search(rf'<td[^>]*>{APP6}</td>.*?href="/review/(\d+)"', page, re.S).group(1)
    token = csrf_of(e2, "/expert")
    r = e2.post(f"/review/{link}/recuse", data={"csrf": token, "reason": ""})
    assert "理由" in _flash(e2, r)
    r = e2.post(f"/review/{link}/recuse", data={"csrf": token, "reason": "同单位"})
    assert "已声明回避" in _flash(e2, r)
    assert APP6 not in e2.get("/expert").text
    assert e2.get(f"/review/{link}").status_code == 404
    assert e2.get(f"/app/{APP6}").status_code == 404  # no longer its to see

    sheet = tmp_path / "scores.csv"
    sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                     f"E001,{APP5},30,25,15,20,10\nE002,{APP5},29,24,15,19,10\n",
                     encoding="utf-8")
    cli("review", "import", CALL, sheet, now="2025-04-21", actor="coord-zhou")
    cli("advance", CALL, "close_review", now="2025-05-07", actor="coord-zhou")
    for trigger, at in (("rank", "2025-05-08"), ("propose", "2025-05-09"),
                        ("open_notice", "2025-05-09"), ("close_notice", "2025-05-20")):
        cli("advance", CALL, trigger, now=at, actor="approver-wang")
    cli("advance", CALL, "fund", now="2025-05-21", actor="approver-wang")
    staff = client(db)
    login(staff, "approver-wang")
    awards = staff.get(f"/staff/call/{CALL}/awards.xlsx")
    assert awards.status_code == 200 and awards.content.startswith(b"PK")
    from openpyxl import load_workbook

    cells = [str(c.value) for row in load_workbook(io.BytesIO(awards.content)).active.iter_rows()
             for c in row if c.value is not None]
    assert "市测试5学会" in cells and APP6 not in cells
    if system.missing("pango") is None:  # WeasyPrint needs pango (CI always has it)
        pdf = staff.get(f"/staff/call/{CALL}/awards.pdf")
        assert pdf.content.startswith(b"%PDF-")
    cli("advance", CALL, "open_assessment", now="2025-12-01", actor="officer-li")
    clock.set_now("2025-12-05T10:00")
    s = client(db)
    login(s, "s005")
    page = s.get(f"/app/{APP5}").text
    assert f'action="/app/{APP5}/report"' in page
    token = csrf_of(s, "/society")
    r = s.post(f"/app/{APP5}/report", data={"csrf": token},
               files={"file": ("report.pdf", b"<html>not a report</html>", "application/pdf")})
    assert "按文件内容判断" in _flash(s, r)
    r = s.post(f"/app/{APP5}/report", data={"csrf": token},
               files={"file": ("进展报告.pdf", portal.pdf_bytes("report"), "application/pdf")})
    assert "报告" in _flash(s, r)
    shown = json.loads(cli("show", APP5, "--json").output)
    assert [a["report"] for a in shown["assessments"]] == ["进展报告.pdf"]
    other = client(db)
    login(other, "s006")
    r = other.post(f"/app/{APP5}/report", data={"csrf": csrf_of(other, "/society")},
                   files={"file": ("x.pdf", portal.pdf_bytes(), "application/pdf")})
    assert r.status_code == 404
