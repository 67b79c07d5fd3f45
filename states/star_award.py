"""Star rating, stage 3: public notice, the award of stars, and dynamic management.

Rated societies pass a public notice (公示; objections as in project calls);
when it ends each gets its star with the call's reward, valid for
`star.validity_years`. A new star supersedes the society's current one (kept,
raised or lowered); a society rated below one star loses its current star
(by the rating); a star is revoked for a failed annual inspection or a
penalty (`review_standing`, batch) or one by one with a reason (`revoke`).

Model societies (示范学会): after the notice, `name_models` names the starred
societies the call's `star.model.rules` name (`lifecycle.rules.model_societies`),
each with a title valid for `star.model.validity_years`; `revoke_model` takes a
title back with a reason (the star stays). A title ends with the star it rests
on when that star is revoked or lost by a rating, and a later title supersedes it.
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, update

from lifecycle.core import audit
from lifecycle.core.models import ModelSociety, ModelStatus, StarRecord, StarStatus
from lifecycle.rules import model_societies, past, payments
from notifications.reasons import Reason
from states.award import (
    has_open_objection,
    has_upheld_objection,
    load_notice_end,
    load_objections,
    no_open_objection,
    notice_period_over,
    objection_resolved,
)
from states.names import (
    IN_NOTICE,
    MODEL,
    MODEL_REVOKED,
    NOT_RATED,
    OBJECTION_RAISED,
    RATED,
    REJECTED,
    REVOKED,
    STARRED,
    UNRATED,
)
from states.outcome import BARS_NEXT_CALLS
from states.roles import APPROVER, OFFICER, SCHEDULER, SOCIETY
from states.spec import Context, Move, Notify, Schedule, State
from states.star_rating import stars

REVOKE_KINDS = ("inspection", "penalty", "other")

HOLDING = (STARRED, MODEL, MODEL_REVOKED)
"""Declarations whose star was awarded (and may be current): named a model society or not."""


def notice_ends(call, entered: datetime) -> datetime:
    return call.notice_end(entered)


def _years_later(t: datetime, years: int) -> datetime:
    try:
        return t.replace(year=t.year + years)
    except ValueError:  # 29 February
        return t.replace(year=t.year + years, day=28)


# --- conditions -------------------------------------------------------------

def results_published(_app, ctx: Context) -> str | None:
    """Unrated results are final once the notice ended (or when nobody reached a star)."""
    ends = ctx.data["notice_ends"]
    if ends is None:
        return None if ctx.now >= ctx.call.calendar.review_due else Reason("review_running")
    return None if ctx.now >= ends else Reason("notice_running")


def star_current(app, ctx: Context) -> str | None:
    rec = ctx.data["current_star"].get(app.id)
    if rec is None:
        return Reason("star_not_current")
    if rec.valid_until <= ctx.now:
        return Reason("star_expired", date=f"{rec.valid_until:%Y-%m-%d}")
    return None


def _revocation_given(_app, ctx: Context) -> tuple[str, str]:
    """The (kind, reason) a one-by-one revocation was given (options "kind" and "reason")."""
    return ctx.options.get("kind"), str(ctx.options.get("reason") or "").strip()


def _standing_lost(app, _ctx: Context) -> tuple[str, str] | None:
    """The (kind, reason) a society lost its standing for, or None while in good standing."""
    if not app.annual_inspection_passed:
        return ("inspection", Reason("inspection_failed"))
    if app.penalty:
        return ("penalty", Reason("under_penalty"))
    return None


def revocation_reason_given(app, ctx: Context) -> str | None:
    kind, reason = _revocation_given(app, ctx)
    if kind not in REVOKE_KINDS:
        return Reason("revocation_needs_kind", kinds=", ".join(REVOKE_KINDS))
    if not reason:
        return Reason("revocation_needs_reason")
    return None


def society_lost_standing(app, ctx: Context) -> str | None:
    return Reason("in_good_standing") if _standing_lost(app, ctx) is None else None


def meets_model_rule(app, ctx: Context) -> str | None:
    if not ctx.call.star.model.rules:
        return Reason("no_model_rules")
    if app.society_id in ctx.data["model_named"]:
        return None
    return Reason("meets_no_model_rule", stars=stars(app.star_level or 0), call=ctx.call.id)


def model_current(app, ctx: Context) -> str | None:
    rec = ctx.data["current_model"].get(app.id)
    if rec is None:
        return Reason("no_current_model")
    if rec.valid_until <= ctx.now:
        return Reason("model_expired", date=f"{rec.valid_until:%Y-%m-%d}")
    return None


def model_revocation_reason_given(_app, ctx: Context) -> str | None:
    return None if str(ctx.options.get("reason") or "").strip() else \
        Reason("model_revocation_needs_reason")


# --- decisions --------------------------------------------------------------

def star_withheld_by_objection(app, ctx: Context) -> dict:
    oid, why = ctx.data["upheld"][app.id]
    return {"granted_amount": 0, "decision_reason": Reason("objection_upheld", oid=oid, why=why)}


def revoked_as_given(app, ctx: Context) -> dict:
    kind, reason = _revocation_given(app, ctx)
    return {"decision_reason": Reason("star_revoked", kind=kind, reason=reason)}


def revoked_for_standing(app, ctx: Context) -> dict:
    kind, reason = _standing_lost(app, ctx)
    return {"decision_reason": Reason("star_revoked", kind=kind, reason=reason)}


def _model_until(ctx: Context):
    return _years_later(ctx.now, ctx.call.star.model.validity_years or
                        ctx.call.star.validity_years)


def model_terms(app, ctx: Context) -> dict:
    return {"decision_reason": Reason("model_named", why=ctx.data["model_named"][app.society_id],
                                      date=f"{_model_until(ctx):%Y-%m-%d}")}


def model_revoked_as_given(_app, ctx: Context) -> dict:
    return {"decision_reason": Reason("model_revoked", reason=ctx.options["reason"].strip())}


# --- batch loaders ----------------------------------------------------------

def load_current_stars(conn, ctx: Context, apps) -> None:
    ctx.data["current_star"] = {r.application_id: r for r in conn.execute(
        select(StarRecord).where(StarRecord.call_id == ctx.call.id,
                                 StarRecord.status == StarStatus.ACTIVE))}


def load_model_named(conn, ctx: Context, apps) -> None:
    """Whom the call's model society rules name among the batch, and why (a few queries)."""
    ctx.data["model_named"] = model_societies.named(
        conn, ctx.call, {a.society_id: a.star_level or 0 for a in apps}, ctx.now,
        BARS_NEXT_CALLS, ctx.history.counts_for_models)


def load_current_models(conn, ctx: Context, apps) -> None:
    ctx.data["current_model"] = {r.application_id: r for r in conn.execute(
        select(ModelSociety).where(ModelSociety.call_id == ctx.call.id,
                                   ModelSociety.status == ModelStatus.ACTIVE))}


def _active_elsewhere(conn, ctx: Context, society_ids: set[str]) -> dict[str, object]:
    """Each society's current star from earlier calls (valid now), one query for the chunk's
    societies (not every active star, once per chunk)."""
    return {r.society_id: r for r in conn.execute(
        select(StarRecord).where(StarRecord.status == StarStatus.ACTIVE,
                                 StarRecord.call_id != ctx.call.id,
                                 StarRecord.valid_until > ctx.now,
                                 StarRecord.society_id.in_(sorted(society_ids)))
        .order_by(StarRecord.awarded_at))}


def _end(conn, records: list[tuple[object, str, str, str]], ctx: Context) -> None:
    """End star records: (record, status, kind, reason); audited."""
    if not records:
        return
    conn.execute(update(StarRecord).where(StarRecord.id == bindparam("b_id"))
                 .values(status=bindparam("status"), end_kind=bindparam("end_kind"),
                         end_reason=bindparam("end_reason"), ended_at=ctx.now),
                 [{"b_id": r.id, "status": s, "end_kind": k, "end_reason": why}
                  for r, s, k, why in records])
    audit.record(conn, ctx.actor, [audit.Event(f"star_{s}", r.call_id, r.application_id, payload={
        "society": r.society_id, "level": r.level, "kind": k, "reason": why})
        for r, s, k, why in records], at=ctx.now)


# --- effects ------------------------------------------------------------------

class _Earlier(NamedTuple):
    """A star level an imported earlier year gave (`history import`): compared with, never
    ended (it is no record of ours)."""

    level: int


def award_stars(conn, ctx: Context, apps) -> None:
    """Star records for the batch (kept, raised, lowered or new), their rewards and payments."""
    until = _years_later(ctx.now, ctx.call.star.validity_years)
    before = _active_elsewhere(conn, ctx, {a.society_id for a in apps})
    brought = past.held_stars(conn, ctx.now, {a.society_id for a in apps} - set(before),
                              (ctx.call.workflow,))      # a star an earlier year gave
    rows, ended, events = [], [], []
    for a in apps:
        prev = before.get(a.society_id) or (
            _Earlier(brought[a.society_id][0]) if a.society_id in brought else None)
        level = a.star_level or 0
        change = "new" if prev is None else ("kept" if prev.level == level else
                                             "raised" if level > prev.level else "lowered")
        rows.append({"society_id": a.society_id, "call_id": ctx.call.id, "application_id": a.id,
                     "level": level, "total": a.score or 0.0, "reward": a.granted_amount or 0,
                     "change": change, "previous_level": prev.level if prev else None,
                     "awarded_at": ctx.now, "valid_until": until, "status": StarStatus.ACTIVE,
                     "ended_at": None, "end_kind": "", "end_reason": ""})
        if prev is not None and not isinstance(prev, _Earlier):
            ended.append((prev, StarStatus.SUPERSEDED, "rating",
                          f"superseded by {ctx.call.id}: {stars(prev.level)} -> {stars(level)} "
                          f"({change})"))
        events.append(audit.Event("star_award", ctx.call.id, a.id, payload={
            "society": a.society_id, "level": level, "total": a.score, "change": change,
            "previous_level": prev.level if prev else None, "reward": a.granted_amount,
            "valid_until": until.isoformat(sep=" ")}))
    _end(conn, ended, ctx)
    conn.execute(insert(StarRecord), rows)
    audit.record(conn, ctx.actor, events, at=ctx.now)
    payments.plan(conn, ctx.call, [(a.id, a.granted_amount or 0) for a in apps], ctx.now,
                  ctx.actor, label="星级奖励 star reward")


def _end_titles(conn, ctx: Context, ends: dict[str, tuple[str, str]]) -> None:
    """End the societies' active model society titles: society -> (status, reason); audited."""
    if not ends:
        return
    rows = list(conn.execute(select(ModelSociety).where(
        ModelSociety.status == ModelStatus.ACTIVE, ModelSociety.society_id.in_(sorted(ends)))))
    if not rows:
        return
    conn.execute(update(ModelSociety).where(ModelSociety.id == bindparam("b_id"))
                 .values(status=bindparam("status"), end_reason=bindparam("end_reason"),
                         ended_at=ctx.now),
                 [{"b_id": r.id, "status": ends[r.society_id][0],
                   "end_reason": ends[r.society_id][1]} for r in rows])
    audit.record(conn, ctx.actor, [audit.Event(f"model_title_{ends[r.society_id][0]}", r.call_id,
                                               r.application_id, payload={
        "society": r.society_id, "reason": ends[r.society_id][1]}) for r in rows], at=ctx.now)


def lose_stars_by_rating(conn, ctx: Context, apps) -> None:
    before = _active_elsewhere(conn, ctx, {a.society_id for a in apps})
    bound = {a.id: min(ctx.call.star.sheet_for(a.society_class).thresholds.values())
             if ctx.call.star.sheet_for(a.society_class) else 0 for a in apps}
    lost = [(before[a.society_id], StarStatus.LOST, "rating",
             f"rating of {ctx.call.id}: total {a.score:g} below one star ({bound[a.id]:g})")
            for a in apps if a.society_id in before]
    _end(conn, lost, ctx)
    _end_titles(conn, ctx, {r.society_id: (ModelStatus.REVOKED, f"star lost: {why}")
                            for r, _, _, why in lost})


def _revoke(conn, ctx: Context, apps, why_of) -> None:
    recs = ctx.data["current_star"]
    ended = [(recs[a.id], StarStatus.REVOKED, *why_of(a, ctx)) for a in apps]
    _end(conn, ended, ctx)
    _end_titles(conn, ctx, {r.society_id: (ModelStatus.REVOKED, f"star revoked ({k}): {why}")
                            for r, _, k, why in ended})


def name_models(conn, ctx: Context, apps) -> None:
    """Model society titles for the batch; a society's earlier title is superseded."""
    until = _model_until(ctx)
    _end_titles(conn, ctx, {a.society_id: (ModelStatus.SUPERSEDED,
                                           f"superseded by {ctx.call.id}") for a in apps})
    conn.execute(insert(ModelSociety), [
        {"society_id": a.society_id, "call_id": ctx.call.id, "application_id": a.id,
         "rule": ctx.data["model_named"][a.society_id], "named_at": ctx.now,
         "valid_until": until, "status": ModelStatus.ACTIVE, "ended_at": None,
         "end_reason": ""} for a in apps])
    audit.record(conn, ctx.actor, [audit.Event("model_named", ctx.call.id, a.id, payload={
        "society": a.society_id, "level": a.star_level, "why": ctx.data["model_named"][
            a.society_id], "valid_until": until.isoformat(sep=" ")}) for a in apps], at=ctx.now)


def revoke_model_titles(conn, ctx: Context, apps) -> None:
    _end_titles(conn, ctx, {a.society_id: (ModelStatus.REVOKED, ctx.options["reason"].strip())
                            for a in apps})


def revoke_star_as_given(conn, ctx: Context, apps) -> None:
    _revoke(conn, ctx, apps, _revocation_given)


def revoke_star_for_standing(conn, ctx: Context, apps) -> None:
    _revoke(conn, ctx, apps, _standing_lost)


# --- the table --------------------------------------------------------------

TRIGGERS = {
    "open_notice": "发布星级公示 open the star notice",
    "object": "提出异议 object",
    "dismiss_objection": "驳回异议 dismiss an objection",
    "uphold_objection": "支持异议 uphold an objection",
    "close_notice": "公示结束并授星 close the notice and award the stars",
    "name_models": "命名示范学会 name the model societies",
    "revoke_model": "撤销示范学会称号 revoke a model society title",
    "revoke": "撤销星级 revoke a star",
    "review_standing": "年检复核 review standing",
}
"""The label of each trigger this stage defines, "中文 English" as a state's (pages, lists)."""
DEADLINES = {
    "notice_ends": "公示结束 the notice ends",
}
"""The label of each deadline this stage schedules (its reminders are labelled from it)."""

STATES = (
    State(IN_NOTICE, "公示中 in public notice", notify=(Notify("star_notice_opened"),),
          schedule=(Schedule("notice_ends", notice_ends, fires="close_notice"),)),
    State(OBJECTION_RAISED, "异议处理中 objection raised", notify=(Notify("objection_filed"),)),
    State(STARRED, "已授星 star awarded", notify=(Notify("star_awarded"),)),
    State(NOT_RATED, "未达星级 no star", notify=(Notify("star_not_rated"),), final=True),
    State(REJECTED, "异议成立 rejected", notify=(Notify("rejected"),), final=True),
    State(REVOKED, "星级撤销 star revoked", notify=(Notify("star_revoked"),), final=True),
    State(MODEL, "示范学会 named a model society", notify=(Notify("model_named"),)),
    State(MODEL_REVOKED, "示范学会称号撤销 model society title revoked (star kept)",
          notify=(Notify("model_revoked"),)),
)

_N = (load_objections, load_notice_end)
MOVES = (
    Move("open_notice", (RATED,), IN_NOTICE, help="publish the proposed star list",
         who=(APPROVER,)),
    Move("object", (IN_NOTICE, OBJECTION_RAISED), OBJECTION_RAISED, (has_open_objection,),
         prepare=(load_objections,), help="an objection was filed (`starfund objection file`)",
         who=(OFFICER, SOCIETY)),
    Move("dismiss_objection", (OBJECTION_RAISED,), STARRED,
         (objection_resolved, notice_period_over), prepare=_N, effects=(award_stars,),
         help="the objection was dismissed (`starfund objection resolve --dismiss`)",
         who=(APPROVER,)),
    Move("dismiss_objection", (OBJECTION_RAISED,), IN_NOTICE, (objection_resolved,),
         prepare=_N,
         who=(APPROVER,)),
    Move("uphold_objection", (OBJECTION_RAISED,), REJECTED, (has_upheld_objection,),
         prepare=(load_objections,), decide=(star_withheld_by_objection,),
         help="the objection was upheld: no star",
         who=(APPROVER,)),
    Move("close_notice", (IN_NOTICE, OBJECTION_RAISED), STARRED,
         (notice_period_over, no_open_objection), who=(APPROVER, SCHEDULER), prepare=_N,
         effects=(award_stars,), help="end the notice; award the stars and rewards"),
    Move("close_notice", (UNRATED,), NOT_RATED, (results_published,),
         who=(APPROVER, SCHEDULER), prepare=(load_notice_end,), effects=(lose_stars_by_rating,)),
    Move("name_models", (STARRED,), MODEL, (star_current, meets_model_rule),
         who=(APPROVER, SCHEDULER),
         prepare=(load_current_stars, load_model_named), decide=(model_terms,),
         effects=(name_models,),
         help="name the model societies (示范学会) the call's rule names, after the notice"),
    Move("revoke_model", (MODEL,), MODEL_REVOKED, (model_current, model_revocation_reason_given),
         who=(APPROVER,),
         prepare=(load_current_models,), decide=(model_revoked_as_given,),
         effects=(revoke_model_titles,),
         help="revoke one model society title with a reason (`starfund model revoke`)"),
    Move("revoke", HOLDING, REVOKED, (star_current, revocation_reason_given),
         prepare=(load_current_stars,), decide=(revoked_as_given,),
         effects=(revoke_star_as_given,),
         help="revoke one star with its kind and reason (`starfund star revoke`)",
         who=(APPROVER,)),
    Move("review_standing", HOLDING, REVOKED, (star_current, society_lost_standing),
         who=(APPROVER, SCHEDULER), prepare=(load_current_stars,), decide=(revoked_for_standing,),
         effects=(revoke_star_for_standing,),
         help="revoke the stars of societies that failed the annual inspection or are penalised"),
)
