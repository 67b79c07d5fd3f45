"""Staff's pages: each call's dashboard, advancing a trigger, the audit trail, exports."""
from __future__ import annotations

import io
from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response
from starlette.routing import Route

from lifecycle.acts import reports, views
from lifecycle.core import audit, clock
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import Application, Society
from lifecycle.core.tabular import DictWriter
from lifecycle.engine import engine, permissions
from lifecycle.engine.machine import for_workflow
from lifecycle.reporting import documents, figures
from lifecycle.scheduling import reminders

from .. import words
from ..http import Ctx, Page, Redirect, page

PAGE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def staff_only(ctx: Ctx) -> None:
    """Staff only (the `read` act); others get 404, as for anything not theirs."""
    if not views.is_staff(ctx.actor):
        raise NotFound("staff only")


@page
def home(ctx: Ctx):
    staff_only(ctx)
    calls = views.calls(ctx.conn)
    counts = dict(ctx.conn.execute(select(Application.call_id, func.count())
                                   .group_by(Application.call_id)).all())
    return Page("staff/home.html", {"calls": calls, "counts": counts})


def _apps(conn, call_id: str, state: str | None, offset: int, limit: int | None):
    stmt = (select(Application.id, Application.title, Application.category, Application.state,
                   Application.requested_amount, Application.granted_amount, Application.score,
                   Application.rank, Society.name.label("society"))
            .join(Society, Society.id == Application.society_id)
            .where(Application.call_id == call_id)
            .order_by(Application.id))
    if state:
        stmt = stmt.where(Application.state == state)
    if limit is not None:
        stmt = stmt.offset(offset).limit(limit)
    return [dict(r._mapping) for r in conn.execute(stmt)]


@page
def dashboard(ctx: Ctx):
    """Applications per state, the funnel, budget per category (the report's own figures and
    charts), outstanding reviews, deadlines coming and overdue, and the applications."""
    staff_only(ctx)
    call_id = ctx.params["call"]
    call = engine.load_call(ctx.conn, call_id)
    status = reports.status(ctx.conn, call_id)
    state = ctx.request.query_params.get("state") or None
    offset = ctx.number("offset")
    return Page("staff/call.html", {
        "call": call, "status": status, "figures": figures.report_data(ctx.conn, call_id),
        "outstanding": views.outstanding(ctx.conn, call_id),
        "deadlines": views.deadlines(ctx.conn, call_id), "state": state, "offset": offset,
        "apps": _apps(ctx.conn, call_id, state, offset, PAGE), "page": PAGE,
        "triggers": for_workflow(call.workflow).triggers})


@page
def remind(ctx: Ctx):
    staff_only(ctx)
    call_id, expert_id = ctx.params["call"], ctx.params["expert"]
    sent = reminders.remind_expert(ctx.conn, call_id, expert_id, ctx.actor)
    return Redirect(f"/staff/call/{call_id}",
                    ctx.tr(f"已向 {expert_id} 发出提醒（{sent} 封）",
                           f"Reminder to {expert_id} queued ({sent} message)"))


@page(reads_only=False)  # the dry run writes, then rolls back
def advance_preview(ctx: Ctx):
    """The dry run of a trigger, and a confirmation form (refused as on the CLI)."""
    staff_only(ctx)
    call_id, trigger = ctx.params["call"], ctx.request.query_params.get("trigger", "")
    call = engine.load_call(ctx.conn, call_id)
    if trigger not in for_workflow(call.workflow).triggers:
        raise BadValue(ctx.tr("该流程没有这一步", f"workflow {call.workflow} has no trigger "
                              f"{trigger[:40]!r}"))
    report = engine.advance(ctx.conn, call_id, trigger, ctx.actor, dry_run=True)
    return Page("staff/advance.html", {"call": call, "trigger": trigger, "report": report})


@page
def advance(ctx: Ctx):
    staff_only(ctx)
    call_id, trigger = ctx.params["call"], ctx.form.get("trigger", "")
    report = engine.advance(ctx.conn, call_id, trigger, ctx.actor)
    name = ctx.w.trigger(trigger, engine.load_call(ctx.conn, call_id).workflow)
    return Redirect(f"/staff/call/{call_id}",
                    ctx.tr(f"{name}：移动 {report.moved_total} 项，跳过 {report.skipped_total} 项",
                           f"{name}: {report.moved_total} moved, "
                           f"{report.skipped_total} skipped"))


def _audit_query(ctx: Ctx, limit: int | None) -> tuple[audit.Query, dict[str, str]]:
    p = ctx.request.query_params
    given = {k: p.get(k, "").strip() for k in ("call", "application", "actor", "action",
                                                 "since", "until")}
    try:
        since = clock.parse(given["since"]) if given["since"] else None
        until = clock.parse(given["until"]) if given["until"] else None
    except ValueError as e:
        raise BadValue(str(e)) from None
    offset = ctx.number("offset")
    return audit.Query(call_id=given["call"] or None, application_id=given["application"] or None,
                       actor=given["actor"] or None, action=given["action"] or None,
                       since=since, until=until, newest_first=True, limit=limit,
                       offset=offset), given


@page
def trail(ctx: Ctx):
    """The audit trail, filtered and paged (newest first)."""
    permissions.require(ctx.conn, ctx.actor, "audit.read")
    q, given = _audit_query(ctx, PAGE)
    events = views.trail_as_read(ctx.conn, ctx.actor, audit.query(ctx.conn, q))
    return Page("staff/audit.html", {"events": events, "given": given, "offset": q.offset,
                                     "page": PAGE, "actions": words.actions()})


def _export(name: str, fmt: str, columns: list[str], rows: list[dict[str, Any]]) -> Response:
    """CSV or XLSX of rows, every text cell inert (as the CLI's exports)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        body, media = ("\ufeff" + buffer.getvalue()).encode(), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        out = io.BytesIO()
        documents.write_xlsx(out, name[:31], columns, [[r.get(c) for c in columns] for r in rows])
        body, media = out.getvalue(), XLSX
    else:
        raise NotFound(f"no export as {fmt}")
    return Response(body, media_type=media, headers={
        "content-disposition": f'attachment; filename="{name}.{fmt}"'})


@page
def export_apps(ctx: Ctx):
    staff_only(ctx)
    call_id = ctx.params["call"]
    engine.load_call(ctx.conn, call_id)
    rows = _apps(ctx.conn, call_id, ctx.request.query_params.get("state") or None, 0, None)
    return _export(f"{call_id}-applications", ctx.params["fmt"],
                   ["id", "society", "category", "title", "state", "requested_amount",
                    "granted_amount", "score", "rank"], rows)


@page
def export_trail(ctx: Ctx):
    permissions.require(ctx.conn, ctx.actor, "audit.read")
    q, _ = _audit_query(ctx, None)
    rows = [{**e, "payload": str(e["payload"])}
            for e in views.trail_as_read(ctx.conn, ctx.actor, audit.query(ctx.conn, q))]
    return _export("audit", ctx.params["fmt"],
                   ["seq", "at", "written_at", "actor", "by", "action", "call_id",
                    "application_id", "from_state", "to_state", "payload"], rows)


@page
def export_outstanding(ctx: Ctx):
    staff_only(ctx)
    call_id = ctx.params["call"]
    engine.load_call(ctx.conn, call_id)
    return _export(f"{call_id}-outstanding", ctx.params["fmt"],
                   ["expert_id", "name", "email", "assigned", "returned", "owed"],
                   views.outstanding(ctx.conn, call_id))


routes = [
    Route("/staff", home, methods=["GET"]),
    Route("/staff/call/{call}", dashboard, methods=["GET"]),
    Route("/staff/call/{call}/remind/{expert}", remind, methods=["POST"]),
    Route("/staff/call/{call}/advance", advance_preview, methods=["GET"]),
    Route("/staff/call/{call}/advance", advance, methods=["POST"]),
    Route("/staff/call/{call}/applications.{fmt}", export_apps, methods=["GET"]),
    Route("/staff/call/{call}/outstanding.{fmt}", export_outstanding, methods=["GET"]),
    Route("/staff/audit", trail, methods=["GET"]),
    Route("/staff/audit.{fmt}", export_trail, methods=["GET"]),
]
