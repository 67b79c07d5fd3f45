"""Earlier years' results brought in by `starfund history import` (`past_results`), read by the
rules that read history beside the calls run inside starfund.

Each (kind, year) of the imported rows stands for one earlier call of that kind, named
"<year> <kind> (history)", created on 1 January of its year (so it comes before every call
run inside starfund, and counts as a call of that year for the rules that look back some
years). Such a call has the settings' defaults: a failed or terminated project bars the
society from the next `bar_calls_after_failure` (2) calls of the kinds that bar, and fails
with the grade 不合格; its grade is the project's final one. An imported star level is held
for `validity_years` (2) from the end of its year, unless a rating inside starfund came
since. Which kinds count for which rule is the kinds' own policy (`History`), as for calls
run inside starfund.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from lifecycle.core.models import PastResult, StarRecord

FAIL_GRADE = "不合格"
BAR_CALLS = 2
STAR_VALIDITY_YEARS = 2
SUFFIX = "(history)"


def label(year: int, kind: str) -> str:
    """How an imported year is named where a call's id would be."""
    return f"{year} {kind} {SUFFIX}"


@dataclass(frozen=True)
class PriorCall:
    """An earlier call as the history rules see it: one run inside starfund (`config` its
    settings) or an imported year (`year` set, `config` empty: the defaults)."""

    id: str
    created_at: datetime
    config: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    year: int | None = None

    @property
    def imported(self) -> bool:
        return self.year is not None


def imported_calls(conn: Connection, kinds: Iterable[str]) -> list[PriorCall]:
    """The imported years of `kinds`, oldest first, as earlier calls."""
    rows = conn.execute(select(PastResult.kind, PastResult.year)
                        .where(PastResult.kind.in_(tuple(kinds)))
                        .group_by(PastResult.kind, PastResult.year)
                        .order_by(PastResult.year, PastResult.kind)).all()
    return [PriorCall(label(r.year, r.kind), datetime(r.year, 1, 1), {}, r.kind, r.year)
            for r in rows]


def merged(conn: Connection, real: Iterable[Any], kinds: Iterable[str]) -> list[Any]:
    """Calls run inside starfund (rows with id, config, created_at) and the imported years
    of `kinds`, in the order of creation."""
    return sorted([*imported_calls(conn, kinds), *real], key=lambda c: (c.created_at, c.id))


def results(conn: Connection, calls: Iterable[Any]) -> list[Any]:
    """The imported project rows (grades and terminations) of the imported years among
    `calls` (the others, run inside starfund, are left to their own queries)."""
    wanted = [(c.kind, c.year) for c in calls if isinstance(c, PriorCall)]
    if not wanted:
        return []
    years = {y for _, y in wanted}
    return [r for r in conn.execute(select(PastResult).where(
        PastResult.year.in_(sorted(years)), PastResult.stars.is_(None))
        .order_by(PastResult.society_id, PastResult.project))
        if (r.kind, r.year) in wanted]


def failed(row: Any) -> bool:
    return bool(row.terminated) or row.grade == FAIL_GRADE


def star_levels(conn: Connection, kind: str, years: Iterable[int] | None = None,
                societies: Iterable[str] | None = None) -> dict[tuple[str, int], int]:
    """(society, year) -> the star level an imported rating of `kind` gave."""
    stmt = select(PastResult.society_id, PastResult.year, PastResult.stars).where(
        PastResult.kind == kind, PastResult.stars.is_not(None))
    if years is not None:
        stmt = stmt.where(PastResult.year.in_(sorted(set(years))))
    if societies is not None:
        stmt = stmt.where(PastResult.society_id.in_(sorted(set(societies))))
    return {(r.society_id, r.year): r.stars for r in conn.execute(stmt)}


def held_stars(conn: Connection, now: datetime, societies: Iterable[str] | None = None,
               kinds: Iterable[str] | None = None) -> dict[str, tuple[int, int, str]]:
    """Per society: the imported star still held at `now` (level, year, kind): the latest
    imported rating, valid `STAR_VALIDITY_YEARS` from the end of its year, for a society no
    rating inside starfund has rated since (that one holds, or ended, its star)."""
    stmt = select(PastResult.society_id, PastResult.year, PastResult.stars, PastResult.kind) \
        .where(PastResult.stars.is_not(None), PastResult.year >= now.year - STAR_VALIDITY_YEARS)
    if kinds is not None:
        stmt = stmt.where(PastResult.kind.in_(tuple(kinds)))
    if societies is not None:
        stmt = stmt.where(PastResult.society_id.in_(sorted(set(societies))))
    out: dict[str, tuple[int, int, str]] = {}
    stmt = stmt.where(PastResult.society_id.not_in(select(StarRecord.society_id)))
    for r in conn.execute(stmt.order_by(PastResult.year)):
        if datetime(r.year + STAR_VALIDITY_YEARS + 1, 1, 1) > now and r.stars > 0:
            out[r.society_id] = (r.stars, r.year, r.kind)
        else:
            out.pop(r.society_id, None)
    return out


def of_society(conn: Connection, society_id: str) -> list[dict[str, Any]]:
    """A society's imported results, for its profile."""
    return [{"year": r.year, "kind": r.kind, "project": r.project, "title": r.title,
             "grade": r.grade, "terminated": r.terminated, "stars": r.stars, "model": r.model,
             "source": r.source, "source_sha256": r.source_sha256}
            for r in conn.execute(select(PastResult).where(PastResult.society_id == society_id)
                                  .order_by(PastResult.year, PastResult.kind,
                                            PastResult.project))]
