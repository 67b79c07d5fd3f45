"""Open declaration (公开申报) and the formal check (形式审查).

Societies' declarations arrive as drafts (imported by the administrator);
`submit` declares them, `close_declaration` closes the window and runs the
formal check: eligible applications go on to review, the others are
ineligible with written reasons, and drafts never submitted lapse.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from lifecycle.core.models import Application
from lifecycle.rules.eligibility import barred_societies
from states.names import DECLARED, DRAFT, ELIGIBLE, INELIGIBLE, LAPSED, WITHDRAWN
from states.outcome import BARS_NEXT_CALLS
from states.roles import OFFICER, SCHEDULER, SOCIETY
from states.spec import Context, Move, Notify, Schedule, State

NOT_DECLARED = (DRAFT, WITHDRAWN, LAPSED)
"""Applications that hold no declaration: never submitted, or taken back."""


def declaration_closes(call, _entered: datetime) -> datetime:
    return call.calendar.declaration_closes


# --- conditions -------------------------------------------------------------

def has_required_fields(app, ctx: Context) -> str | None:
    missing = [f for f in ctx.call.eligibility.required_fields
               if not str(getattr(app, f, None) or (app.fields or {}).get(f) or "").strip()]
    return f"missing required fields: {', '.join(missing)}" if missing else None


def within_category_cap(app, ctx: Context) -> str | None:
    category = ctx.call.category(app.category)
    if category is None:
        return f"unknown category {app.category}"
    if not 0 < app.requested_amount <= category.cap:
        return f"requested amount outside the category cap of {category.cap}"
    return None


def declaration_window_open(_app, ctx: Context) -> str | None:
    cal = ctx.call.calendar
    if ctx.now < cal.declaration_opens:
        return "declaration window not yet open"
    if ctx.now > cal.declaration_closes:
        return "declaration window closed"
    return None


def declaration_window_closed(_app, ctx: Context) -> str | None:
    if ctx.now < ctx.call.calendar.declaration_closes:
        return "declaration window still open"
    return None


def one_per_society_and_category(app, ctx: Context) -> str | None:
    """Counts the pairs declared before this batch and those earlier declarations of the
    batch took (`takes_society_and_category`)."""
    if not ctx.call.eligibility.one_per_society_per_category:
        return None
    if (app.society_id, app.category) in ctx.data["declared_pairs"]:
        return "society already declared in this category"
    return None


def society_in_good_standing(app, _ctx: Context) -> str | None:
    if not app.annual_inspection_passed:
        return "society did not pass the annual inspection (年检)"
    if app.penalty:
        return "society is under a penalty"
    return None


def not_barred(app, ctx: Context) -> str | None:
    """A society whose earlier project failed sits out the call's number of later calls."""
    reason = ctx.data.get("barred", {}).get(app.society_id)
    return f"society barred: {reason}" if reason else None


# --- decisions --------------------------------------------------------------

def takes_society_and_category(app, ctx: Context) -> dict:
    """A declaration takes its (society, category) pair: a later draft of the batch for the
    same pair is refused."""
    ctx.data["declared_pairs"].add((app.society_id, app.category))
    return {}


# --- batch loaders ----------------------------------------------------------

def load_declared_pairs(conn, ctx: Context, apps) -> None:
    """(society, category) pairs already declared in this call, before this batch."""
    rows = conn.execute(
        select(Application.society_id, Application.category)
        .where(Application.call_id == ctx.call.id,
               Application.state.notin_(NOT_DECLARED))
        .group_by(Application.society_id, Application.category)
        .having(func.count() > 0))
    ctx.data["declared_pairs"] = {(r.society_id, r.category) for r in rows}


def load_barred(conn, ctx: Context, apps) -> None:
    """Societies barred by earlier failures (filled by the outcome stage's record)."""
    ctx.data["barred"] = barred_societies(conn, BARS_NEXT_CALLS, ctx.call)


# --- the table --------------------------------------------------------------

STATES = (
    State(DRAFT, "草稿 draft", schedule=(
        Schedule("declaration_closes", declaration_closes, fires="close_declaration"),)),
    State(DECLARED, "已申报 declared", notify=(Notify("declaration_received"),)),
    State(WITHDRAWN, "已撤回 withdrawn", notify=(Notify("withdrawn"),), final=True),
    State(LAPSED, "逾期未提交 lapsed", final=True),
    State(ELIGIBLE, "形式审查通过 formal check passed", notify=(Notify("formal_check_passed"),)),
    State(INELIGIBLE, "形式审查未通过 ineligible", notify=(Notify("formal_check_failed"),),
          final=True),
)

MOVES = (
    Move("submit", (DRAFT,), DECLARED,
         (declaration_window_open, has_required_fields, within_category_cap,
          one_per_society_and_category),
         prepare=(load_declared_pairs,), decide=(takes_society_and_category,),
         help="declare a draft",
         who=(SOCIETY, OFFICER)),
    Move("withdraw", (DRAFT, DECLARED), WITHDRAWN, help="the society withdraws",
         who=(SOCIETY, OFFICER)),
    Move("close_declaration", (DECLARED,), ELIGIBLE,
         (declaration_window_closed, society_in_good_standing, within_category_cap, not_barred),
         who=(OFFICER, SCHEDULER), prepare=(load_barred,),
         help="close the window and run the formal check"),
    Move("close_declaration", (DECLARED,), INELIGIBLE, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
    Move("close_declaration", (DRAFT,), LAPSED, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
)
