"""An expert's pages: its assignments, a conflict of interest, its scores."""
from __future__ import annotations

from starlette.routing import Route

from lifecycle.acts import drafts, reviewing, scoresheets, views
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.engine import engine
from states.roles import EXPERT

from ..http import Ctx, Page, Redirect, page


def _expert(ctx: Ctx) -> str:
    if not ctx.actor.holds((EXPERT,)) or not ctx.actor.expert_id:
        raise NotFound("this page is for an expert's account")
    return ctx.actor.expert_id


@page
def home(ctx: Ctx):
    """The expert's own assignments, with their deadlines and where each stands."""
    return Page("expert/home.html", {"assignments": views.assignments(ctx.conn, _expert(ctx))})


def _assignment(ctx: Ctx):
    _expert(ctx)
    try:
        number = int(ctx.params["assignment"])
    except ValueError:
        raise NotFound("no such assignment") from None
    return views.assignment(ctx.conn, ctx.actor, number)


@page
def score_form(ctx: Ctx):
    a = _assignment(ctx)
    app = views.application(ctx.conn, ctx.actor, a.application_id)
    call = engine.load_call(ctx.conn, a.call_id)
    given = a.draft if a.draft is not None else (a.scores or {})
    return Page("expert/score.html", {
        "a": a, "app": app, "call": call, "criteria": call.criteria_for(app.category),
        "given": given, "files": drafts.attachments(ctx.conn, app.id),
        "state": views.state_label(ctx.conn, app.call_id, app.state)})


def _scores(ctx: Ctx, criteria, partial: bool) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for c in criteria:
        text = ctx.form.get(f"score_{c.id}", "").strip()
        if not text:
            if not partial:
                raise BadValue(ctx.tr(f"请给出「{c.name}」的分数", f"score {c.name_en or c.id}"))
            out[c.id] = None
            continue
        try:
            out[c.id] = float(text)
        except ValueError:
            raise BadValue(ctx.tr(f"{c.name}：「{text}」不是数字",
                                  f"{c.name_en or c.id}: {text!r} is not a number")) from None
        if not 0 <= out[c.id] <= c.max:   # the act checks again; here, said with its name
            raise BadValue(ctx.tr(f"{c.name}：{text} 超出 0 至 {c.max:g} 的范围",
                                  f"{c.name_en or c.id}: {text} is outside 0 to {c.max:g}"))
    return out


@page
def score(ctx: Ctx):
    """Save a draft, or submit (every criterion, each within its range, checked here again)."""
    a = _assignment(ctx)
    call = engine.load_call(ctx.conn, a.call_id)
    app = views.application(ctx.conn, ctx.actor, a.application_id)
    criteria = call.criteria_for(app.category)
    if ctx.form.get("action") == "save":
        scoresheets.save_draft(ctx.conn, a.call_id, a.expert_id, a.application_id,
                               _scores(ctx, criteria, partial=True), ctx.actor)
        return Redirect(f"/review/{a.id}", ctx.tr("草稿已保存", "Draft saved"))
    scores = {k: v for k, v in _scores(ctx, criteria, partial=False).items() if v is not None}
    try:
        scoresheets.record(ctx.conn, a.call_id, [(a.expert_id, a.application_id, scores)],
                           ctx.actor)
    except scoresheets.ScoreError as e:
        raise BadValue(str(e).replace("sheet 1 (expert", "(expert")) from None
    return Redirect("/expert", ctx.tr(f"{app.id} 的评分已提交", f"Scores for {app.id} submitted"))


@page
def recuse(ctx: Ctx):
    """Declare a conflict of interest: the assignment ends and a coordinator reassigns."""
    a = _assignment(ctx)
    reviewing.recuse(ctx.conn, a.application_id, a.expert_id,
                     ctx.form.get("reason", "").strip(), ctx.actor)
    return Redirect("/expert", ctx.tr(f"已声明回避 {a.application_id}",
                                      f"Conflict declared on {a.application_id}"))


routes = [
    Route("/expert", home, methods=["GET"]),
    Route("/review/{assignment}", score_form, methods=["GET"]),
    Route("/review/{assignment}", score, methods=["POST"]),
    Route("/review/{assignment}/recuse", recuse, methods=["POST"]),
]
