"""The public archive: a call's 公示 stays published at /notice/CALL after its period ends
(marked closed, the list as it was published, with the dates it ran), its award list
(立项名单) is published at /awards/CALL with the date of the award, and /archive lists every
notice and award list; nobody logs in for any of them."""
from __future__ import annotations

import re

import portal
from portal import CALL, client
from worlds import Cli

from lifecycle.core import clock

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_closed_notice_stays_published_with_its_dates(new_db, tmp_path):
    db = new_db("starfund", world=portal.IN_REVIEW)
    cli = Cli(db)
    public = client(db)
    assert public.get(f"/notice/{CALL}").status_code == 404      # not opened yet
    assert "尚无已发布的公示" in public.get("/archive").text
    sheet = tmp_path / "scores.csv"
    sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                     f"E001,{APP5},30,25,15,20,10\nE002,{APP5},29,24,15,19,10\n"
                     f"E001,{APP6},20,15,10,10,5\nE002,{APP6},21,14,10,10,5\n",
                     encoding="utf-8")
    cli("review", "import", CALL, sheet, now="2025-04-21", actor="coord-zhou")
    cli("advance", CALL, "close_review", now="2025-05-07", actor="coord-zhou")
    for trigger, at in (("rank", "2025-05-08"), ("propose", "2025-05-09"),
                        ("open_notice", "2025-05-09")):
        cli("advance", CALL, trigger, now=at, actor="approver-wang")
    clock.set_now("2025-05-12T10:00")
    running = _text(public.get(f"/notice/{CALL}").text)
    assert "公示中" in running and "2025-05-09 至 2025-05-15" in running
    assert "学会学术年会" in running and "如何提出异议" in running
    assert public.get(f"/awards/{CALL}").status_code == 404   # not before the notice closes
    cli("advance", CALL, "close_notice", now="2025-05-20", actor="approver-wang")
    clock.set_now("2026-03-01T10:00")          # the next year: long after the notice
    closed = _text(public.get(f"/notice/{CALL}").text)
    assert "公示已结束" in closed and "2025-05-09 至 2025-05-15" in closed, closed
    assert "学会学术年会" in closed and "如何提出异议" not in closed
    assert 'href="/awards/' in public.get(f"/notice/{CALL}").text
    awards = _text(public.get(f"/awards/{CALL}").text)
    assert "立项名单" in awards and "立项日期：2025-05-20" in awards and "学会学术年会" in awards
    listing = public.get("/archive")
    assert listing.status_code == 200
    text = _text(listing.text)
    assert "2025-05-09 至 2025-05-15" in text and "已结束" in text and "立项日期 2025-05-20" in text
    assert f'href="/notice/{CALL}"' in listing.text and f'href="/awards/{CALL}"' in listing.text
    assert 'href="/archive"' in public.get("/").text
    public.get("/lang/en")
    english = _text(public.get(f"/notice/{CALL}").text)
    assert "This notice has closed" in english and "2025-05-09 to 2025-05-15" in english
    assert "Awarded on: 2025-05-20" in _text(public.get(f"/awards/{CALL}").text)
    assert public.get("/notice/no-such-call").status_code == 404
    assert public.get("/awards/no-such-call").status_code == 404
