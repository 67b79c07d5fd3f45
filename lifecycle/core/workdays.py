"""Working days as China counts them: the official calendar, plus a call's local days.

A national public notice (公示) runs a number of working days. China's official
calendar is not "Monday to Friday minus holidays": each year the State Council
publishes its holidays together with make-up working days (调休), Saturdays or
Sundays on which people work. That calendar comes from `chinese-calendar`, a
maintained table of every published year (see docs/guide.md, "Working days",
for why it and not the `holidays` package). A call may add local days off
(`calendar.holidays`) and local working days (`calendar.working_days`).

A year the installed table does not cover yet (the State Council publishes the
next year's arrangement in November or December) is never guessed: counting
into it raises `NotCovered`, unless the call lists that year's days itself
(`calendar.listed_years`: there, working days are Monday to Friday minus the
call's holidays plus its working days).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

import chinese_calendar

from lifecycle.core.errors import BadValue


class NotCovered(BadValue):
    """A working day was asked of a year the installed calendar has no official data for."""

    def __init__(self, year: int, context: str = "") -> None:
        self.year = year
        first, last = covered_years()
        super().__init__(
            f"{context}working days in {year} are not known yet: the installed calendar "
            f"(chinese-calendar {version()}) covers {first}-{last}; update it once the State "
            f"Council has published {year}'s holidays (pip install -U chinese-calendar), or "
            f"list {year}'s days off and make-up working days in the call "
            f"(calendar.holidays, calendar.working_days) and add {year} to calendar.listed_years")


def version() -> str:
    return getattr(chinese_calendar, "__version__", "?")


@cache
def covered(year: int) -> bool:
    """True when the installed calendar has the official holidays and make-up days of `year`."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@cache
def covered_years() -> tuple[int, int]:
    """The first and last year the installed calendar covers."""
    from chinese_calendar import constants

    years = {d.year for d in (*constants.holidays, *constants.workdays)}
    return min(years), max(years)


@dataclass(frozen=True)
class Workdays:
    """The official calendar with a call's local days off and working days laid over it."""

    days_off: frozenset[date] = field(default_factory=frozenset)
    working: frozenset[date] = field(default_factory=frozenset)
    listed_years: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, days_off: Iterable[date] = (), working: Iterable[date] = (),
           listed_years: Iterable[int] = ()) -> Workdays:
        return cls(frozenset(days_off), frozenset(working), frozenset(listed_years))

    def is_working_day(self, day: date) -> bool:
        """The call's own days first, then the official calendar (or, for a listed year,
        Monday to Friday); NotCovered for a year neither knows."""
        if day in self.working:
            return True
        if day in self.days_off:
            return False
        if day.year in self.listed_years:
            return day.weekday() < 5
        if not covered(day.year):
            raise NotCovered(day.year)
        return chinese_calendar.is_workday(day)

    def after(self, start: date, n: int) -> date:
        """The n-th working day after `start` (start itself not counted)."""
        day, left = start, n
        while left:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day
