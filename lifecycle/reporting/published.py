"""What a call publishes, as plain data: the public notice (公示) list and the final award list
(立项名单). Read-only and regenerable at any time: the notice lists the applications that
entered it (their `open_notice` events), with the period each entry gave them, so the list of
a finished call is the list that was published, never an empty one. An application proposed
again after a second review gets a notice of its own: the notice shown is the latest (the
last opening, with every entry whose period was still running then)."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from lifecycle import kinds
from lifecycle.core import clock
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Application, AuditEvent, Society, StarRecord
from states import award
from states.names import AWARDED, STARRED
from states.star_rating import RATED

WAITING = (award.PROPOSED, RATED)
"""Proposed applications (rated star declarations) that the notice has not opened for yet."""


class NothingPublished(BadValue):
    pass


def _rows(conn: Connection, call_id: str, ids: list[str] | None = None,
          states: tuple[str, ...] | None = None) -> list[Any]:
    stmt = (select(Application.id, Application.title, Application.title_en,
                   Application.category, Application.granted_amount, Application.rank,
                   Application.society_id, Application.star_level, Application.state,
                   Society.name, Society.name_en)
            .join(Society, Society.id == Application.society_id)
            .where(Application.call_id == call_id)
            .order_by(Application.category, Application.rank, Application.id))
    if ids is not None:
        stmt = stmt.where(Application.id.in_(ids))
    if states is not None:
        stmt = stmt.where(Application.state.in_(states))
    return conn.execute(stmt).all()


def _groups(call: CallConfig, rows: list[Any], amount: dict[str, int] | None = None,
            lang: str = "zh") -> list[dict[str, Any]]:
    groups = []
    for c in call.categories:
        items = [{"id": r.id, "title": (r.title_en or r.title) if lang == "en" else r.title,
                  "society": (r.name_en or r.name) if lang == "en" else r.name,
                  "society_id": r.society_id, "stars": r.star_level or 0,
                  "amount": (amount or {}).get(r.id, r.granted_amount or 0)}
                 for r in rows if r.category == c.id]
        if items:
            groups.append({"id": c.id, "name": (c.name_en or c.name) if lang == "en" else c.name,
                           "projects": items})
    return groups


def _call(call: CallConfig, lang: str) -> dict[str, Any]:
    return {"id": call.id, "workflow": call.workflow, "stars": kinds.of(call.workflow).rates_stars,
            "title": (call.title_en or call.title) if lang == "en" else call.title,
            "channel": (call.review.objection_channel_en if lang == "en"
                        else call.review.objection_channel)}


def _amounts_at(conn: Connection, call_id: str, when: dict[str, Any]) -> dict[str, int]:
    """Each application's granted amount as it stood at `when[app]` (its entry into the notice,
    its award): the last move that set it by then, so a later cut or a rejection does not
    change what was published. One query for the call."""
    out: dict[str, int] = {}
    for app_id, at, payload in conn.execute(
            select(AuditEvent.application_id, AuditEvent.at, AuditEvent.payload)
            .where(AuditEvent.call_id == call_id, AuditEvent.application_id.in_(list(when)),
                   AuditEvent.payload.like('%"granted_amount"%'))
            .order_by(AuditEvent.seq)):
        amount = (json.loads(payload).get("set") or {}).get("granted_amount")
        if amount is not None and at <= when[app_id]:
            out[app_id] = int(amount)
    return out


def _rewards(conn: Connection, call_id: str) -> dict[str, int]:
    return dict(conn.execute(select(StarRecord.application_id, StarRecord.reward)
                             .where(StarRecord.call_id == call_id)).all())


def notice_data(conn: Connection, call: CallConfig, lang: str = "zh") -> dict[str, Any]:
    """The notice: the applications that entered it (or, before it opens, those waiting for it:
    a draft), per category, with amounts, the period and the objection channel."""
    opened = award.opened_at(conn, call.id)
    if opened:  # the latest notice: the last opening and those whose notice was still running
        latest = max(opened.values())
        opened = {a: t for a, t in opened.items() if call.notice_end(t) > latest}
    draft = not opened
    rows = _rows(conn, call.id, ids=list(opened)) if opened else _rows(conn, call.id,
                                                                       states=WAITING)
    if not rows:
        raise NothingPublished(f"{call.id} has no public notice yet: nothing is proposed "
                               f"(`starfund advance {call.id} propose` first)")
    amount = _rewards(conn, call.id) if kinds.of(call.workflow).rates_stars else \
        _amounts_at(conn, call.id, opened) if opened else None
    groups = _groups(call, rows, amount, lang)
    items = [it for g in groups for it in g["projects"]]
    starts = min(opened.values()) if opened else None
    ends = max(call.notice_end(t) for t in opened.values()) if opened else None
    return {"kind": "notice", "lang": lang, "call": _call(call, lang), "draft": draft,
            "groups": groups, "count": len(items), "total": sum(i["amount"] for i in items),
            "starts": starts.date().isoformat() if starts else None,
            "last_day": (ends - timedelta(seconds=1)).date().isoformat() if ends else None,
            "ends": ends.isoformat(sep=" ") if ends else None,
            "period": _period(call, lang), "running": bool(ends and clock.now() < ends),
            "generated": clock.now().date().isoformat()}


def awards_data(conn: Connection, call: CallConfig, lang: str = "zh") -> dict[str, Any]:
    """The final award list (立项名单): the applications the notice awarded (their move into
    awarded, for a star call starred), after the notice closed; refused while it runs."""
    waiting = _rows(conn, call.id, states=award.LISTED + WAITING)
    if waiting:
        raise NothingPublished(f"the public notice of {call.id} has not closed: {len(waiting)} "
                               "application(s) still proposed or in notice; the award list "
                               "follows the notice")
    when = dict(conn.execute(select(AuditEvent.application_id, func.max(AuditEvent.at))
                             .where(AuditEvent.call_id == call.id,
                                    AuditEvent.to_state.in_((AWARDED, STARRED)))
                             .group_by(AuditEvent.application_id)).all())
    if not when:
        raise NothingPublished(f"{call.id} has awarded nothing yet")
    rows = _rows(conn, call.id, ids=list(when))
    amount = _rewards(conn, call.id) if kinds.of(call.workflow).rates_stars else \
        _amounts_at(conn, call.id, when)
    groups = _groups(call, rows, amount, lang)
    items = [it for g in groups for it in g["projects"]]
    closed = conn.execute(select(AuditEvent.at).where(
        AuditEvent.call_id == call.id, AuditEvent.to_state.in_((AWARDED, STARRED)))
        .order_by(AuditEvent.seq.desc()).limit(1)).scalar()
    return {"kind": "awards", "lang": lang, "call": _call(call, lang), "groups": groups,
            "count": len(items), "total": sum(i["amount"] for i in items),
            "awarded": closed.date().isoformat() if closed else None,
            "generated": clock.now().date().isoformat()}


def _period(call: CallConfig, lang: str) -> str:
    n = call.calendar.notice_days
    if call.calendar.notice_working_days:
        return f"{n} 个工作日" if lang == "zh" else f"{n} working days"
    return f"{n} 天" if lang == "zh" else f"{n} calendar days"


def archive(conn: Connection, lang: str = "zh") -> list[dict[str, Any]]:
    """Every call whose public notice opened, newest notice first: its notice with the dates it
    ran (running or closed) and, once the notice closed and something was awarded, its award
    list with the date of the award: what the portal keeps published at `/notice/CALL` and
    `/awards/CALL` after the notice ends."""
    from lifecycle.engine import engine

    out = []
    opened = award.notices_opened(conn)
    for call_id in sorted(opened, key=lambda c: (opened[c][1], c), reverse=True):
        call = engine.load_call(conn, call_id)
        notice = notice_data(conn, call, lang)
        try:
            awards: dict[str, Any] | None = awards_data(conn, call, lang)
        except NothingPublished:
            awards = None
        out.append({"id": call_id, "title": notice["call"]["title"],
                    "stars": notice["call"]["stars"],
                    "notice": {k: notice[k] for k in ("starts", "last_day", "ends", "running",
                                                      "count", "total", "period")},
                    "awards": None if awards is None else {
                        k: awards[k] for k in ("awarded", "count", "total")}})
    return out
