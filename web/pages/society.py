"""A society contact's pages: its calls, its declarations, and what it files."""
from __future__ import annotations

from sqlalchemy import select
from starlette.routing import Route

from lifecycle import kinds
from lifecycle.acts import assessing, consents, drafts, objections, stars, views
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import Application, Society
from lifecycle.engine import engine
from states.award import LISTED
from states.roles import SOCIETY

from .. import processing_rules
from ..http import Ctx, Page, Redirect, page


def _society(ctx: Ctx) -> str:
    """The caller's society (404 for an account that speaks for none)."""
    if not ctx.actor.holds((SOCIETY,)) or not ctx.actor.society_id:
        raise NotFound("this page is for a society's account")
    return ctx.actor.society_id


@page
def home(ctx: Ctx):
    """The calls (open ones first) and the society's own applications."""
    society = _society(ctx)
    calls = views.calls(ctx.conn)
    return Page("society/home.html", {
        "calls": sorted(calls, key=lambda c: not c["open"]),
        "workflows": {c["id"]: c["workflow"] for c in calls},
        "apps": views.society_applications(ctx.conn, society),
        "society": views.society_name(ctx.conn, society)})


def _rules(ctx: Ctx) -> dict[str, object]:
    """The processing rules in force, shown again on a declaration's form, and when the caller
    agreed to them (it has: `web.http` sends it to the rules first otherwise)."""
    version = processing_rules.VERSION
    return {"version": version, "text": processing_rules.html(ctx.lang, version),
            "agreed_at": consents.given(ctx.conn, ctx.actor.name, version)}


def _values(ctx: Ctx) -> dict[str, str]:
    return {k: v for k, v in ctx.form.items() if k not in ("csrf", "back")}


@page
def declare_form(ctx: Ctx):
    _society(ctx)
    call = engine.load_call(ctx.conn, ctx.params["call"])
    return Page("society/declare.html", {"call": call, "values": {}, "app": None,
                                         "rules": _rules(ctx)})


@page
def declare(ctx: Ctx):
    _society(ctx)
    app_id = drafts.declare(ctx.conn, ctx.params["call"], _values(ctx), ctx.actor)
    return Redirect(f"/app/{app_id}", ctx.tr(f"草稿 {app_id} 已保存；请上传附件后提交",
                                             f"Draft {app_id} saved; upload its files, "
                                             "then submit"))


@page
def edit(ctx: Ctx):
    app = views.application(ctx.conn, ctx.actor, ctx.params["app"])
    changed = drafts.edit(ctx.conn, app.id, _values(ctx), ctx.actor)
    call = engine.load_call(ctx.conn, app.call_id)
    fields = ctx.tr("、", ", ").join(ctx.w.field(f, call) for f in changed)
    return Redirect(f"/app/{app.id}", ctx.tr("已保存", "Saved") + (
        ctx.tr(f"：{fields}", f": {fields}") if changed else ctx.tr("（无变化）", " (nothing changed)")))


@page
def attach(ctx: Ctx):
    app = views.application(ctx.conn, ctx.actor, ctx.params["app"])
    if "file" not in ctx.files:
        raise BadValue(ctx.tr("请选择要上传的文件", "choose a file to upload"))
    name, data = ctx.files["file"]
    kinds_asked = engine.load_call(ctx.conn, app.call_id).eligibility.attachments
    if ctx.form.get("kind", "") not in {k.id for k in kinds_asked}:
        names = ctx.tr("、", ", ").join(ctx.tr(k.name, k.name_en or k.name) for k in kinds_asked)
        raise BadValue(ctx.tr(f"请选择附件类型：{names}", f"choose the kind of file: {names}"))
    r = drafts.attach(ctx.conn, app.id, ctx.form.get("kind", ""), name, data, ctx.actor)
    return Redirect(f"/app/{app.id}", ctx.tr(f"已上传 {r['file']}", f"Uploaded {r['file']}"))


def _move(ctx: Ctx, trigger: str, zh: str, en: str):
    """Fire the society's own move on this application; a refusal shows the move's reasons."""
    app = views.application(ctx.conn, ctx.actor, ctx.params["app"])
    report = engine.advance(ctx.conn, app.call_id, trigger, ctx.actor, only=[app.id])
    if not report.moved_total:
        reason = ctx.w.say(report.skipped_ids.get(app.id) or ctx.tr("现在不能办理", "not allowed now"))
        raise BadValue(ctx.tr(f"未能{zh}：{reason}", f"{en} refused: {reason}"))
    return Redirect(f"/app/{app.id}", ctx.tr(f"已{zh}", f"{en}: done"))


@page
def submit(ctx: Ctx):
    return _move(ctx, "submit", "提交", "Submission")


@page
def withdraw(ctx: Ctx):
    return _move(ctx, "withdraw", "撤回", "Withdrawal")


@page
def report(ctx: Ctx):
    """A progress report for the current checkpoint (checked by content)."""
    app = views.application(ctx.conn, ctx.actor, ctx.params["app"])
    if "file" not in ctx.files:
        raise BadValue(ctx.tr("请选择报告文件", "choose the report file"))
    r = assessing.record_report(ctx.conn, app.id, ctx.files["file"], ctx.actor)
    return Redirect(f"/app/{app.id}", ctx.tr(f"已提交 {r['checkpoint']} 报告",
                                             f"Report for {r['checkpoint']} received"))


@page
def objection_form(ctx: Ctx):
    app = _listed(ctx)
    return Page("society/objection.html", {"app": app})


def _listed(ctx: Ctx):
    """An application on a running notice (any society may object to any listed one)."""
    app = ctx.conn.execute(select(Application.id, Application.title, Application.call_id,
                                  Application.state)
                           .where(Application.id == ctx.params["app"])).first()
    if app is None or app.state not in LISTED:
        raise NotFound("not on a public notice")
    return app


@page
def object_(ctx: Ctx):
    app = _listed(ctx)
    evidence = ctx.files.get("evidence")
    r = objections.file(ctx.conn, app.id, ctx.form.get("by", ""), ctx.form.get("contact", ""),
                        ctx.form.get("reason", ""), ctx.actor, evidence=evidence)
    return Redirect(f"/notice/{app.call_id}",
                    ctx.tr(f"异议 {r['objection']} 已受理", f"Objection {r['objection']} filed"))


@page
def star_form(ctx: Ctx):
    """The star programme's self-evaluation sheet of the society's class, to fill online."""
    society = _society(ctx)
    call = engine.load_call(ctx.conn, ctx.params["call"])
    if "star_sheet" not in kinds.of(call.workflow).portal:
        raise NotFound("not a star call")
    cls = ctx.conn.execute(select(Society.society_class).where(Society.id == society)).scalar()
    return Page("society/star.html", {"call": call, "rows": stars.sheet(call, cls or ""),
                                      "rules": _rules(ctx)})


@page
def star_declare(ctx: Ctx):
    society = _society(ctx)
    call = engine.load_call(ctx.conn, ctx.params["call"])
    if "star_sheet" not in kinds.of(call.workflow).portal:
        raise NotFound("not a star call")
    cls = ctx.conn.execute(select(Society.society_class).where(Society.id == society)).scalar()
    rows = {r["indicator"]: r for r in stars.sheet(call, cls or "")}
    scores: dict[str, float | None] = {}
    for key, value in ctx.form.items():
        if key.startswith("self_"):
            row = rows.get(key[5:], {})
            name = ctx.tr(row.get("name", key[5:]), row.get("name_en") or row.get("name", key[5:]))
            try:
                scores[key[5:]] = float(value) if value.strip() else None
            except ValueError:
                raise BadValue(ctx.tr(f"{name}：「{value}」不是数字",
                                      f"{name}: {value!r} is not a number")) from None
            top = row.get("max")
            if scores[key[5:]] is not None and top is not None and not 0 <= scores[key[5:]] <= top:
                raise BadValue(ctx.tr(f"{name}：{value} 超出 0 至 {top:g} 的范围",
                                      f"{name}: {value} is outside 0..{top:g}"))
    app_id = stars.self_evaluate(ctx.conn, ctx.params["call"], scores, ctx.actor)
    return Redirect(f"/app/{app_id}", ctx.tr("自评已保存为草稿，请核对后提交",
                                             "Self-evaluation saved as a draft: check it, "
                                             "then submit"))


routes = [
    Route("/society/star/{call}", star_form, methods=["GET"]),
    Route("/society/star/{call}", star_declare, methods=["POST"]),
    Route("/society", home, methods=["GET"]),
    Route("/society/declare/{call}", declare_form, methods=["GET"]),
    Route("/society/declare/{call}", declare, methods=["POST"]),
    Route("/app/{app}/edit", edit, methods=["POST"]),
    Route("/app/{app}/attach", attach, methods=["POST"]),
    Route("/app/{app}/submit", submit, methods=["POST"]),
    Route("/app/{app}/withdraw", withdraw, methods=["POST"]),
    Route("/app/{app}/report", report, methods=["POST"]),
    Route("/object/{app}", objection_form, methods=["GET"]),
    Route("/object/{app}", object_, methods=["POST"]),
]
