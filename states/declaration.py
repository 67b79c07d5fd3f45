"""Open declaration (公开申报) and the formal check (形式审查).

Societies' declarations arrive as drafts (imported by the administrator);
`submit` declares them, `close_declaration` closes the window and runs the
formal check: eligible applications go on to review, the others are
ineligible with written reasons, and drafts never submitted lapse.

Steady support (`lifecycle.rules.support`, the call's `support` rules) is
applied here by the loaders, like the bar on failed societies: a society may
declare beyond the one per category, or ask above the category cap, when an
earlier result earns it; what a declaration relies on is in its reason and
audited (`record_support`). A call that divides its budget by class refuses
societies of other classes at the formal check.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select

from lifecycle.core import audit
from lifecycle.core.models import Application, Attachment
from lifecycle.rules import support
from lifecycle.rules.eligibility import barred_societies
from notifications.reasons import Reason
from states.names import DECLARED, DRAFT, ELIGIBLE, INELIGIBLE, LAPSED, WITHDRAWN
from states.outcome import BARS_NEXT_CALLS
from states.roles import OFFICER, SCHEDULER, SOCIETY
from states.spec import Context, Move, Notify, Schedule, State

NOT_DECLARED = (DRAFT, WITHDRAWN, LAPSED)
"""Applications that hold no declaration: never submitted, or taken back."""


def declaration_closes(call, _entered: datetime) -> datetime:
    return call.calendar.declaration_closes


# --- conditions -------------------------------------------------------------

FIELDS = {
    "title": "项目名称 title", "title_en": "英文名称 English title", "category": "类别 category",
    "requested_amount": "申请金额 requested amount", "summary": "摘要 summary",
    "discipline": "学科 discipline", "society_id": "学会 society",
}
"""The label of each field of a declaration ("中文 English"); a call's further required fields
are named by their ids."""


def has_required_fields(app, ctx: Context) -> str | None:
    missing = [f for f in ctx.call.eligibility.required_fields
               if not str(getattr(app, f, None) or (app.fields or {}).get(f) or "").strip()]
    said = [Reason.literal(f, FIELDS.get(f, f).partition(" ")[0]) for f in missing]
    return Reason("missing_fields", fields=said) if missing else None


def _cap_raise(app, ctx: Context) -> tuple[float, list[support.Earned]]:
    """The percentage the society's support raises its category caps by, and why."""
    notes = ctx.data.get("support", {}).get(app.society_id)
    return support.of_effect(notes, "cap_percent") if notes else (0.0, [])


def _cap(app, ctx: Context, base: int) -> int:
    return int(base * (1 + _cap_raise(app, ctx)[0] / 100))


def within_category_cap(app, ctx: Context) -> str | None:
    category = ctx.call.category(app.category)
    if category is None:
        return Reason("unknown_category", category=app.category)
    cap = _cap(app, ctx, category.cap) if ctx.data.get("support") else category.cap
    if not 0 < app.requested_amount <= cap:
        return Reason("over_cap_raised", cap=cap, base=category.cap) if cap != category.cap \
            else Reason("over_cap", cap=cap)
    return None


def has_required_attachments(app, ctx: Context) -> str | None:
    """The call's required files (申报书, budget sheet) are uploaded (`load_attachments`)."""
    held = ctx.data["attachments"].get(app.id, set())
    missing = [a.name for a in ctx.call.eligibility.attachments
               if a.required and a.id not in held]
    return Reason("missing_attachments", names=missing) if missing else None


def declaration_window_open(_app, ctx: Context) -> str | None:
    cal = ctx.call.calendar
    if ctx.now < cal.declaration_opens:
        return Reason("window_not_open")
    if ctx.now > cal.declaration_closes:
        return Reason("window_closed")
    return None


def declaration_window_closed(_app, ctx: Context) -> str | None:
    if ctx.now < ctx.call.calendar.declaration_closes:
        return Reason("window_still_open")
    return None


def _allowed(app, ctx: Context) -> tuple[int, list[support.Earned]]:
    """How many declarations per category the society may hold, and the support behind more."""
    extra, notes = support.of_effect(ctx.data.get("support", {}).get(app.society_id, []),
                                     "extra_declarations")
    return 1 + int(extra), notes


def one_per_society_and_category(app, ctx: Context) -> str | None:
    """Counts the declarations held before this batch and those earlier declarations of the
    batch took (`takes_society_and_category`); support may allow more than one."""
    if not ctx.call.eligibility.one_per_society_per_category:
        return None
    held = ctx.data["declared_pairs"][(app.society_id, app.category)]
    allowed, notes = _allowed(app, ctx)
    if held >= allowed:
        if allowed == 1:
            return Reason("already_declared")
        return Reason("already_declared_support", held=held,
                      notes="; ".join(n.text() for n in notes))
    return None


def class_in_call(app, ctx: Context) -> str | None:
    """A call that divides its budget by class takes only societies of its classes."""
    if not ctx.call.classes or ctx.call.class_of(app.society_class) is not None:
        return None
    listed = ", ".join(k.id for k in ctx.call.classes)
    if not app.society_class:
        return Reason("no_class", call=ctx.call.id, listed=listed)
    return Reason("class_not_in_call", cls=app.society_class, call=ctx.call.id, listed=listed)


def society_in_good_standing(app, _ctx: Context) -> str | None:
    if not app.annual_inspection_passed:
        return Reason("inspection_failed")
    if app.penalty:
        return Reason("under_penalty")
    return None


def not_barred(app, ctx: Context) -> str | None:
    """A society whose earlier project failed sits out the call's number of later calls."""
    reason = ctx.data.get("barred", {}).get(app.society_id)
    return Reason("barred", reason=reason) if reason else None


# --- decisions --------------------------------------------------------------

def _note(app, ctx: Context, notes: list[support.Earned]) -> None:
    """Remember the support a moved application relies on, for `record_support`."""
    ctx.data.setdefault("support_used", {}).setdefault(app.id, []).extend(notes)


def takes_society_and_category(app, ctx: Context) -> dict:
    """A declaration takes a place of its (society, category): a later draft of the batch
    for the same pair is refused once the places are taken. A place beyond the first, or a
    request above the category's own cap, is the society's support: noted in its reason."""
    pairs = ctx.data["declared_pairs"]
    pairs[(app.society_id, app.category)] += 1
    used: list[support.Earned] = []
    if ctx.call.eligibility.one_per_society_per_category and \
            pairs[(app.society_id, app.category)] > 1:
        used += _allowed(app, ctx)[1]
    category = ctx.call.category(app.category)
    if category is not None and app.requested_amount > category.cap:
        used += _cap_raise(app, ctx)[1]
    if not used:
        return {}
    _note(app, ctx, used)
    return {"decision_reason": f"declaration {pairs[(app.society_id, app.category)]} in "
                               f"{app.category}, {app.requested_amount:,} requested: "
                               + "; ".join(n.text() for n in used)}


# --- batch loaders and effects ----------------------------------------------

def load_declared_pairs(conn, ctx: Context, apps) -> None:
    """Declarations held per (society, category) by the societies of this chunk: those held
    before the batch and those its earlier chunks took (already written), in one query;
    `takes_society_and_category` counts those the chunk itself takes."""
    # by society only (its index: a few rows each), the call picked out here; with the call
    # in the WHERE, SQLite would walk the call's whole (call_id, state) index every chunk
    rows = conn.execute(
        select(Application.call_id, Application.society_id, Application.category, func.count())
        .where(Application.society_id.in_(sorted({a.society_id for a in apps})),
               Application.state.notin_(NOT_DECLARED))
        .group_by(Application.call_id, Application.society_id, Application.category))
    ctx.data["declared_pairs"] = Counter({(s, c): n for call, s, c, n in rows
                                          if call == ctx.call.id})


def load_attachments(conn, ctx: Context, apps) -> None:
    """The kinds of file each application of the chunk holds now, in one query (only when
    the call requires a file)."""
    held: dict[str, set[str]] = {}
    if any(a.required for a in ctx.call.eligibility.attachments):
        rows = conn.execute(select(Attachment.application_id, Attachment.kind).distinct()
                            .where(Attachment.application_id.in_([a.id for a in apps]),
                                   Attachment.current))
        for app_id, kind in rows:
            held.setdefault(app_id, set()).add(kind)
    ctx.data["attachments"] = held


def load_barred(conn, ctx: Context, apps) -> None:
    """Societies barred by earlier failures (filled by the outcome stage's record)."""
    ctx.data["barred"] = barred_societies(conn, BARS_NEXT_CALLS, ctx.call, kinds=ctx.history.bars)


def load_support(conn, ctx: Context, apps) -> None:
    """What the call's support rules give the batch's societies (one query per kind of
    earlier result, like the bar)."""
    ctx.data["support"] = support.earned(conn, ctx.call, None, ctx.now,  # only who earned some
                                         ctx.history.earns_support)


def record_support(conn, ctx: Context, apps) -> None:
    """One `support` audit event per note a moved application relied on."""
    used = ctx.data.get("support_used", {})
    events = [audit.Event("support", ctx.call.id, a.id, payload={"society": a.society_id,
                                                                  **n.as_dict()})
              for a in apps for n in used.get(a.id, [])]
    if events:
        audit.record(conn, ctx.actor, events, at=ctx.now)


# --- the table --------------------------------------------------------------

def declaration_states(draft: str = "草稿 draft",
                       received: str = "declaration_received") -> tuple[State, ...]:
    """The declaration and formal-check states; a kind names its draft and its receipt
    letter (a star call's draft is a filed self-evaluation)."""
    return (
        State(DRAFT, draft, schedule=(
            Schedule("declaration_closes", declaration_closes, fires="close_declaration"),)),
        State(DECLARED, "已申报 declared", notify=(Notify(received),)),
        State(WITHDRAWN, "已撤回 withdrawn", notify=(Notify("withdrawn"),), final=True),
        State(LAPSED, "逾期未提交 lapsed", final=True),
        State(ELIGIBLE, "形式审查通过 formal check passed",
              notify=(Notify("formal_check_passed"),)),
        State(INELIGIBLE, "形式审查未通过 ineligible", notify=(Notify("formal_check_failed"),),
              final=True),
    )


TRIGGERS = {
    "submit": "提交申报 submit the declaration",
    "withdraw": "撤回申报 withdraw",
    "close_declaration": "截止申报并形式审查 close declarations (formal check)",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "declaration_closes": "申报截止 declarations close",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = declaration_states()

MOVES = (
    Move("submit", (DRAFT,), DECLARED,
         (declaration_window_open, has_required_fields, has_required_attachments,
          within_category_cap, one_per_society_and_category),
         prepare=(load_support,), prepare_chunk=(load_declared_pairs, load_attachments),
         decide=(takes_society_and_category,),
         effects=(record_support,), help="declare a draft",
         who=(SOCIETY, OFFICER)),
    Move("withdraw", (DRAFT, DECLARED), WITHDRAWN, help="the society withdraws",
         who=(SOCIETY, OFFICER)),
    Move("close_declaration", (DECLARED,), ELIGIBLE,
         (declaration_window_closed, society_in_good_standing, within_category_cap, not_barred,
          class_in_call),
         who=(OFFICER, SCHEDULER), prepare=(load_barred, load_support),
         help="close the window and run the formal check"),
    Move("close_declaration", (DECLARED,), INELIGIBLE, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
    Move("close_declaration", (DRAFT,), LAPSED, (declaration_window_closed,),
         who=(OFFICER, SCHEDULER)),
)
