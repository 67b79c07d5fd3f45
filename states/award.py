"""Decision (审定), public notice (公示) with objections, and award (立项).

`propose` records the leadership decision on the ranking (proposed / not
proposed); `open_notice` (fired by `starfund notice publish`, or directly)
opens the notice for the call's notice period. Objections are filed and
resolved through `lifecycle.acts.objections`, which moves the application with the
`object`, `dismiss_objection` and `uphold_objection` triggers. An application
with an open objection cannot be awarded; when the notice ends the others are
awarded. An upheld objection rejects the application, or sends it back to
review when the call says `review.upheld_objection = "review"`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from lifecycle.core.models import Objection
from notifications.reasons import Reason
from states.competition import DECIDED
from states.names import (
    AWARDED,
    IN_NOTICE,
    NOT_PROPOSED,
    OBJECTION_RAISED,
    PROPOSED,
    REJECTED,
    UNDER_REVIEW,
)
from states.roles import APPROVER, OFFICER, SCHEDULER, SOCIETY
from states.spec import Context, Move, Notify, Schedule, State

LISTED = (IN_NOTICE, OBJECTION_RAISED)
"""Applications on the public notice: objections may be filed against them."""


def notice_ends(call, entered: datetime) -> datetime:
    return call.notice_end(entered)


# --- conditions -------------------------------------------------------------

def recommended_by_ranking(app, _ctx: Context) -> str | None:
    return None if app.recommended else (app.decision_reason or Reason("not_recommended"))


def notice_period_over(app, ctx: Context) -> str | None:
    """Each application's own notice (from when it entered it), else the call's notice."""
    opened = ctx.data["opened_at"].get(app.id)
    ends = ctx.call.notice_end(opened) if opened is not None else ctx.data["notice_ends"]
    return None if ends is not None and ctx.now >= ends else Reason("notice_running")


def no_open_objection(app, ctx: Context) -> str | None:
    return Reason("open_objection") if app.id in ctx.data["open_objections"] else None


def objection_resolved(app, ctx: Context) -> str | None:
    return Reason("objection_still_open") if app.id in ctx.data["open_objections"] else None


def has_open_objection(app, ctx: Context) -> str | None:
    return None if app.id in ctx.data["open_objections"] else Reason("no_open_objection")


def has_upheld_objection(app, ctx: Context) -> str | None:
    return None if app.id in ctx.data["upheld"] else Reason("no_upheld_objection")


def call_sends_back_to_review(_app, ctx: Context) -> str | None:
    if ctx.call.review.upheld_objection != "review":
        return Reason("call_rejects_upheld")
    return None


# --- decisions --------------------------------------------------------------

def back_to_review_terms(app, ctx: Context) -> dict:
    """The ranking is undone: the application is scored and ranked again."""
    oid, why = ctx.data["upheld"][app.id]
    return {"score": None, "rank": None, "recommended": None, "granted_amount": None,
            "decision_reason": Reason("objection_upheld_review", oid=oid, why=why)}


def rejected_by_objection(app, ctx: Context) -> dict:
    oid, why = ctx.data["upheld"][app.id]
    return {"recommended": False, "granted_amount": 0,
            "decision_reason": Reason("objection_upheld", oid=oid, why=why)}


# --- batch loaders ----------------------------------------------------------

def load_objections(conn, ctx: Context, apps) -> None:
    """Applications with an open objection, and the latest upheld objection of each."""
    rows = conn.execute(select(Objection.id, Objection.application_id, Objection.status,
                               Objection.resolution)
                        .where(Objection.call_id == ctx.call.id,
                               Objection.status.in_(("open", "upheld")))
                        .order_by(Objection.id))
    ctx.data["open_objections"], ctx.data["upheld"] = set(), {}
    for r in rows:
        if r.status == "open":
            ctx.data["open_objections"].add(r.application_id)
        else:
            ctx.data["upheld"][r.application_id] = (r.id, r.resolution)


def load_notice_end(conn, ctx: Context, apps) -> None:
    from lifecycle.core.models import Deadline

    ctx.data["notice_ends"] = conn.execute(
        select(Deadline.due_at).where(Deadline.key == f"{ctx.call.id}:notice_ends")).scalar()
    ctx.data["opened_at"] = opened_at(conn, ctx.call.id)


def opened_at(conn, call_id: str, app_ids: list[str] | None = None) -> dict[str, datetime]:
    """When each application last entered the notice (its `open_notice` audit event), so an
    application proposed again after going back to review gets a notice period of its own."""
    from lifecycle.core.models import AuditEvent

    stmt = (select(AuditEvent.application_id, func.max(AuditEvent.at))
            .where(AuditEvent.call_id == call_id, AuditEvent.action == "open_notice")
            .group_by(AuditEvent.application_id))
    if app_ids is not None:
        stmt = stmt.where(AuditEvent.application_id.in_(app_ids))
    return dict(conn.execute(stmt).all())


def notices_opened(conn) -> dict[str, tuple[datetime, datetime]]:
    """Every call whose public notice ever opened: its first and its last opening (one query),
    for the public archive of notices and award lists."""
    from lifecycle.core.models import AuditEvent

    return {call_id: (first, last) for call_id, first, last in conn.execute(
        select(AuditEvent.call_id, func.min(AuditEvent.at), func.max(AuditEvent.at))
        .where(AuditEvent.action == "open_notice", AuditEvent.call_id.is_not(None))
        .group_by(AuditEvent.call_id))}


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "propose": "审定拟资助名单 propose the awards",
    "open_notice": "发布公示 open the public notice",
    "object": "提出异议 object",
    "dismiss_objection": "驳回异议 dismiss an objection",
    "uphold_objection": "支持异议 uphold an objection",
    "close_notice": "公示结束并立项 close the notice and award",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "notice_ends": "公示结束 the notice ends",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = (
    State(PROPOSED, "拟资助 proposed"),
    State(NOT_PROPOSED, "未入选 not proposed"),
    State(IN_NOTICE, "公示中 in public notice", notify=(Notify("notice_opened"),),
          schedule=(Schedule("notice_ends", notice_ends, fires="close_notice"),)),
    State(OBJECTION_RAISED, "异议处理中 objection raised", notify=(Notify("objection_filed"),)),
    State(AWARDED, "已立项 awarded", notify=(Notify("awarded"),)),
    State(REJECTED, "未获资助 rejected", notify=(Notify("rejected"),), final=True),
)

MOVES = (
    Move("propose", DECIDED, PROPOSED, (recommended_by_ranking,),
         help="record the leadership decision on the ranking",
         who=(APPROVER,)),
    Move("propose", DECIDED, NOT_PROPOSED,
         who=(APPROVER,)),
    Move("open_notice", (PROPOSED,), IN_NOTICE, help="publish the proposed list",
         who=(APPROVER,)),
    Move("object", (IN_NOTICE, OBJECTION_RAISED), OBJECTION_RAISED, (has_open_objection,),
         prepare=(load_objections,), help="an objection was filed (by `starfund objection file`)",
         who=(OFFICER, SOCIETY), any_society=True),
    Move("dismiss_objection", (OBJECTION_RAISED,), AWARDED,
         (objection_resolved, notice_period_over), prepare=(load_objections, load_notice_end),
         help="the objection was dismissed (`starfund objection resolve --dismiss`)",
         who=(APPROVER,)),
    Move("dismiss_objection", (OBJECTION_RAISED,), IN_NOTICE, (objection_resolved,),
         prepare=(load_objections, load_notice_end),
         who=(APPROVER,)),
    Move("uphold_objection", (OBJECTION_RAISED,), UNDER_REVIEW,
         (has_upheld_objection, call_sends_back_to_review), prepare=(load_objections,),
         decide=(back_to_review_terms,),
         help="the objection was upheld (`starfund objection resolve --uphold`)",
         who=(APPROVER,)),
    Move("uphold_objection", (OBJECTION_RAISED,), REJECTED, (has_upheld_objection,),
         prepare=(load_objections,), decide=(rejected_by_objection,),
         who=(APPROVER,)),
    Move("close_notice", (IN_NOTICE, OBJECTION_RAISED), AWARDED,
         (notice_period_over, no_open_objection), who=(APPROVER, SCHEDULER),
         prepare=(load_objections, load_notice_end), help="end the notice and award"),
    Move("close_notice", (NOT_PROPOSED,), REJECTED, (notice_period_over,),
         who=(APPROVER, SCHEDULER), prepare=(load_notice_end,)),
)
