"""Decision (审定), public notice (公示) with objections, and award (立项).

The leadership decision on the ranking is `propose`; the notice then opens for
the call's notice period; an application with an open objection cannot be
awarded; when the notice ends the others are awarded and the rest rejected.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from lifecycle.models import Objection
from states.spec import ADMIN, SCHEDULER, Context, Move, Notify, Schedule, State


def notice_ends(call, entered: datetime) -> datetime:
    return call.notice_end(entered)


# --- conditions -------------------------------------------------------------

def recommended_by_ranking(app, _ctx: Context) -> str | None:
    return None if app.recommended else (app.decision_reason or "not recommended")


def notice_period_over(app, ctx: Context) -> str | None:
    ends = ctx.data["notice_ends"]
    return None if ends is not None and ctx.now >= ends else "public notice still running"


def no_open_objection(app, ctx: Context) -> str | None:
    return "open objection" if app.id in ctx.data["open_objections"] else None


def objection_resolved(app, ctx: Context) -> str | None:
    return "objection still open" if app.id in ctx.data["open_objections"] else None


# --- batch loaders ----------------------------------------------------------

def load_objections(conn, ctx: Context, apps) -> None:
    rows = conn.execute(select(Objection.application_id)
                        .where(Objection.call_id == ctx.call.id, Objection.status == "open"))
    ctx.data["open_objections"] = {r.application_id for r in rows}


def load_notice_end(conn, ctx: Context, apps) -> None:
    from lifecycle.models import Deadline

    ctx.data["notice_ends"] = conn.execute(
        select(Deadline.due_at).where(Deadline.key == f"{ctx.call.id}:notice_ends")).scalar()


# --- the table --------------------------------------------------------------

STATES = (
    State("proposed", "拟资助 proposed"),
    State("not_proposed", "未入选 not proposed"),
    State("in_notice", "公示中 in public notice", notify=(Notify("notice_opened"),),
          schedule=(Schedule("notice_ends", notice_ends, fires="close_notice"),)),
    State("objection_raised", "异议处理中 objection raised", notify=(Notify("objection_filed"),)),
    State("awarded", "已立项 awarded", notify=(Notify("awarded"),)),
    State("rejected", "未获资助 rejected", notify=(Notify("rejected"),), final=True),
)

MOVES = (
    Move("propose", ("ranked",), "proposed", (recommended_by_ranking,),
         help="record the leadership decision on the ranking"),
    Move("propose", ("ranked",), "not_proposed"),
    Move("open_notice", ("proposed",), "in_notice", help="publish the proposed list"),
    Move("object", ("in_notice",), "objection_raised", prepare=(load_objections,),
         help="an objection was filed (by `starfund objection file`)"),
    Move("dismiss_objection", ("objection_raised",), "in_notice", (objection_resolved,),
         prepare=(load_objections,), help="the objection was dismissed"),
    Move("uphold_objection", ("objection_raised",), "rejected", (objection_resolved,),
         prepare=(load_objections,), help="the objection was upheld"),
    Move("close_notice", ("in_notice", "objection_raised"), "awarded",
         (notice_period_over, no_open_objection), who=(ADMIN, SCHEDULER),
         prepare=(load_objections, load_notice_end), help="end the notice and award"),
    Move("close_notice", ("not_proposed",), "rejected", (notice_period_over,),
         who=(ADMIN, SCHEDULER), prepare=(load_notice_end,)),
)
