"""Working days as China counts them: official holidays and make-up working days (调休), a
call's local days laid over them, and no guess for a year the installed calendar lacks."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from worlds import CALL, advance, call_data, call_file, json_of, proposed, reviewed, state_of

from lifecycle import kinds
from lifecycle.core import callconfig


def working_call(notice_days: int = 5, **calendar) -> callconfig.CallConfig:
    return kinds.parse(call_data({"calendar": {"notice_working_days": True,
                                                        "notice_days": notice_days, **calendar}}))


@pytest.mark.parametrize("opened, ends, why", [  # ends: midnight after the last day
    # National Day 2025: Oct 1-8 off; Sunday Sep 28 and Saturday Oct 11 are working days
    ("2025-09-26T10:00", "2025-10-11", "Fri 26 -> Sun 28 (make-up), 29, 30, Thu 9, Fri 10"),
    ("2025-09-30T15:00", "2025-10-15", "Thu 9, Fri 10, Sat 11 (make-up), Mon 13, Tue 14"),
    # Spring Festival 2025: Jan 28 - Feb 4 off; Sunday Jan 26 and Saturday Feb 8 worked
    ("2025-01-24T10:00", "2025-02-08", "Sun 26 (make-up), Mon 27, Wed 5, Thu 6, Fri 7"),
    ("2025-02-05T10:00", "2025-02-12", "Thu 6, Fri 7, Sat 8 (make-up), Mon 10, Tue 11"),
    # Spring Festival 2026: Feb 15-23 off; Saturdays Feb 14 and Feb 28 worked
    ("2026-02-12T10:00", "2026-02-27", "Fri 13, Sat 14 (make-up), Tue 24, Wed 25, Thu 26"),
    ("2026-02-26T10:00", "2026-03-05", "Fri 27, Sat 28 (make-up), Mon 2, Tue 3, Wed 4"),
    # National Day 2026: Oct 1-7 off; Sunday Sep 20 and Saturday Oct 10 worked
    ("2026-09-30T10:00", "2026-10-14", "Thu 8, Fri 9, Sat 10 (make-up), Mon 12, Tue 13"),
])
def test_notice_counts_official_holidays_and_make_up_days(opened, ends, why):
    assert working_call().notice_end(datetime.fromisoformat(opened)) == \
        datetime.fromisoformat(ends), why


def test_local_days_off_and_working_days_lie_over_the_official_calendar():
    opened = datetime(2025, 9, 30, 15)  # officially: Thu 9, Fri 10, Sat 11, Mon 13, Tue 14
    off = working_call(holidays=["2025-10-09"])  # a local day off: Fri 10 .. Wed 15
    assert off.notice_end(opened) == datetime(2025, 10, 16)
    worked = working_call(working_days=["2025-10-12"])  # a local working Sunday: Thu 9 .. Mon 13
    assert worked.notice_end(opened) == datetime(2025, 10, 14)
    calendar_days = kinds.parse(call_data({"calendar": {"notice_days": 7}}))
    assert calendar_days.notice_end(datetime(2025, 9, 30, 15)) == datetime(2025, 10, 7)


def test_a_year_the_calendar_lacks_is_refused_unless_the_call_lists_it():
    with pytest.raises(callconfig.UserError, match=r"working days in 2027 are not known yet.*"
                                                   r"calendar.listed_years"):
        working_call().notice_end(datetime(2026, 12, 29, 10))
    listed = working_call(listed_years=[2027], holidays=["2027-01-01"])
    # Wed 30, Thu 31 (2026, official), then 2027 as listed: Fri 1 off, Mon 4, Tue 5, Wed 6
    assert listed.notice_end(datetime(2026, 12, 29, 10)) == datetime(2027, 1, 7)
    assert listed.calendar.workdays().is_working_day(date(2027, 1, 2)) is False


def test_a_day_cannot_be_both_off_and_worked():
    with pytest.raises(callconfig.ConfigError, match="field calendar.working_days: 2025-10-09 "
                                                     "listed both"):
        working_call(holidays=["2025-10-09"], working_days=["2025-10-09"])


def test_notice_over_national_day_ends_after_the_make_up_saturday(cli, tmp_path):
    call = call_file(tmp_path, {"calendar": {"notice_working_days": True, "notice_days": 5}})
    r = proposed(cli, tmp_path, call=call, n_apps=2, publish_at="2025-09-30T15:00")
    assert "runs until 2025-10-14 (ends 2025-10-15 00:00:00)" in r.output
    early = advance(cli, "close_notice", "2025-10-14T23:00")  # refused: exit 3
    assert early["moved"] == 0
    done = json_of(cli("advance", CALL, "close_notice", "--json", now="2025-10-15T00:00"))
    assert done["moved"] == 2


def test_call_create_refuses_a_notice_in_an_unknown_year(cli, tmp_path):
    patch = {"id": "2026-late", "calendar": {
        "notice_working_days": True, "notice_days": 5,
        "declaration_opens": datetime(2026, 10, 8, 9), "declaration_closes":
            datetime(2026, 11, 30, 17), "review_due": datetime(2026, 12, 28, 17),
        "assessment_due": datetime(2027, 12, 15, 17)}}
    path = call_file(tmp_path, patch, name="late.toml")
    r = cli("call", "create", path, ok=False)
    assert r.exit_code == 1
    assert f"{path}: field calendar.listed_years: the notice, opening when reviews are due " \
           "(2026-12-28), counts 5 working days: working days in 2027 are not known yet" in r.output
    assert json_of(cli("call", "list", "--json")) == []
    patch["calendar"].update(listed_years=[2027], holidays=[date(2027, 1, 1)])
    cli("call", "create", call_file(tmp_path, patch, name="late.toml"))
    assert [c["id"] for c in json_of(cli("call", "list", "--json"))] == ["2026-late"]


def test_notice_publish_refuses_to_guess_and_opens_nothing(cli, tmp_path):
    call = call_file(tmp_path, {"calendar": {"notice_working_days": True, "notice_days": 5}})
    reviewed(cli, tmp_path, lambda a, k: 90, n_apps=2, call=call)
    cli("advance", CALL, "rank", now="2025-05-08")
    cli("advance", CALL, "propose", now="2025-05-09")
    r = cli("notice", "publish", CALL, "--html", tmp_path / "n.html", now="2026-12-29T10:00",
            ok=False)
    assert r.exit_code == 1
    assert "error: 2025-project: a notice opened on 2026-12-29 would count 5 working days: " \
           "working days in 2027 are not known yet" in r.output
    assert state_of(cli, "A0001") == "proposed" and not (tmp_path / "n.html").exists()
