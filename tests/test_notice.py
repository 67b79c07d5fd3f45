"""The public notice page and its period (calendar or working days, with holidays)."""
from __future__ import annotations

from datetime import datetime

from worlds import (
    CALL,
    advance,
    applications,
    call_data,
    call_file,
    eligible_call,
    experts,
    file_objection,
    json_of,
    proposed,
    state_of,
)

from lifecycle import kinds


def test_publish_lists_projects_amounts_channel_and_end_date(cli, tmp_path):
    proposed(cli, tmp_path)
    html = (tmp_path / "notice.html").read_text(encoding="utf-8")
    assert "2025年度学会重点活动项目资助 拟资助项目公示" in html
    assert "公示期：2025-05-10 至 2025-05-16（7 天）" in html
    for i in range(1, 7):
        assert f"<td>A000{i}</td>" in html
    assert html.count("20,000</td>") == 6 and "合计 120,000 元" in html
    assert "高水平学术会议与论坛" in html and "软课题研究" in html
    assert "书面实名异议请寄送市科协学会工作部" in html
    ev = json_of(cli("audit", "query", "--trigger", "notice_publish", "--json"))
    assert ev[0]["payload"]["listed"] == 6 and ev[0]["payload"]["ends"] == "2025-05-17 00:00:00"
    # publishing again re-renders, in English this time, without opening anything again
    r = json_of(cli("notice", "publish", CALL, "--html", tmp_path / "en.html", "--language", "en",
                    "--json", now="2025-05-11"))
    assert r["opened"] == 0 and r["listed"] == 6
    en = (tmp_path / "en.html").read_text(encoding="utf-8")
    assert "Notice period: 2025-05-10 to 2025-05-16 (7 calendar days)" in en


def test_titles_are_escaped_in_the_page(cli, tmp_path):
    from sqlalchemy import update

    from lifecycle.core.db import make_engine, transaction
    from lifecycle.core.models import Application

    proposed(cli, tmp_path)
    e = make_engine(cli.db)
    with transaction(e) as s:  # a society-supplied title with markup in it
        s.connection().execute(update(Application).where(Application.id == "A0001")
                               .values(title="<script>alert(1)</script>"))
    e.dispose()
    cli("notice", "publish", CALL, "--html", tmp_path / "again.html", now="2025-05-11")
    html = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_publish_before_the_decision_is_refused(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(2, ("academic",)))
    r = cli("notice", "publish", CALL, "--html", tmp_path / "n.html", ok=False)
    assert r.exit_code == 1 and "has not opened: propose first" in r.output
    assert not (tmp_path / "n.html").exists()


def test_working_days_skip_weekends_and_holidays(cli, tmp_path):
    call = call_file(tmp_path, {"calendar": {"notice_working_days": True, "notice_days": 5,
                                             "holidays": [datetime(2025, 5, 12).date()]}})
    # opened Saturday 2025-05-10: Mon 12 is a holiday, so Tue 13 .. Mon 19 are the 5 days
    r = proposed(cli, tmp_path, call=call, publish_at="2025-05-10T10:00")
    assert "runs until 2025-05-19 (ends 2025-05-20 00:00:00)" in r.output
    html = (tmp_path / "notice.html").read_text(encoding="utf-8")
    assert "2025-05-19（5 个工作日）" in html
    file_objection(cli, "A0001", "2025-05-19T23:59")
    assert state_of(cli, "A0001") == "objection_raised"
    late = file_objection(cli, "A0002", "2025-05-20T00:00", ok=False)
    assert late.exit_code == 1 and "ended at 2025-05-20 00:00" in late.output
    early = advance(cli, "close_notice", "2025-05-19T12:00")  # refused: exit 3
    assert early["moved"] == 0


def test_notice_end_counts_calendar_or_working_days():
    data = call_data()
    data["calendar"].update(notice_working_days=True, notice_days=5,
                            holidays=["2025-10-01", "2025-10-02", "2025-10-03"])
    c = kinds.parse(data)
    # Tuesday 2025-09-30: officially Oct 1-8 off (not only the 1-3 the call lists), then
    # Thu 9, Fri 10, the make-up Saturday 11, Mon 13, Tue 14 (tests/test_workdays.py has more)
    assert c.notice_end(datetime(2025, 9, 30, 15, 0)) == datetime(2025, 10, 15)
    data["calendar"].update(notice_working_days=False, notice_days=7)
    assert kinds.parse(data).notice_end(datetime(2025, 9, 30, 15, 0)) == \
        datetime(2025, 10, 7)
