"""The report and the published lists on the staff dashboard, from the same implementation as
`starfund report`, `notice export` and `awards export` (lifecycle.reporting): charts served
as images (so the page keeps its strict CSP), the documents as downloads."""
from __future__ import annotations

import io

from starlette.responses import Response
from starlette.routing import Route

from lifecycle.core import clock
from lifecycle.core.errors import NotFound
from lifecycle.engine import engine
from lifecycle.reporting import charts, documents, figures, published

from ..http import Ctx, page
from .staff import XLSX, staff_only

CHARTS = {"funnel": charts.svg_funnel, "budget": charts.svg_budget, "scores": charts.svg_scores,
          "experts": charts.svg_experts, "assessment": charts.svg_assessment,
          "stars": charts.svg_stars}
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""An SVG shown as an image runs no script; its own styles are all it needs."""


@page
def chart(ctx: Ctx):
    staff_only(ctx)
    draw = CHARTS.get(ctx.params["name"])
    if draw is None:
        raise NotFound("no such chart")
    data = figures.report_data(ctx.conn, ctx.params["call"])
    if ctx.params["name"] == "stars" and not data.get("stars"):
        raise NotFound("a star call's chart")
    return Response(draw(data, ctx.lang), media_type="image/svg+xml",
                    headers={"content-security-policy": SVG_CSP})


@page
def report(ctx: Ctx):
    """The call's report: one self-contained HTML file (as `starfund report CALL --html`)."""
    staff_only(ctx)
    data = figures.report_data(ctx.conn, ctx.params["call"])
    title = f"{data['call']['title']} {documents.REPORT[ctx.lang]['report']}"
    html = documents.report_html([data], None, None, title, ctx.lang,
                                 clock.now().date().isoformat())
    return _download(html.encode(), f"{ctx.params['call']}-report.html", "text/html")


@page
def published_list(ctx: Ctx):
    """The 公示 list or the 立项名单 as PDF or XLSX (as `notice export` / `awards export`)."""
    staff_only(ctx)
    kind, fmt = ctx.params["kind"], ctx.params["fmt"]
    if kind not in ("notice", "awards") or fmt not in ("pdf", "xlsx"):
        raise NotFound("no such document")
    call = engine.load_call(ctx.conn, ctx.params["call"])
    data = (published.notice_data if kind == "notice" else published.awards_data)(
        ctx.conn, call, ctx.lang)
    name = f"{call.id}-{kind}.{fmt}"
    if fmt == "pdf":
        html = (documents.notice_html if kind == "notice" else documents.awards_html)(data)
        return _download(documents.pdf(html), name, "application/pdf")
    headers, rows = documents.listing_rows(data)
    out = io.BytesIO()
    documents.write_xlsx(out, "公示" if kind == "notice" else "立项名单", headers, rows)
    return _download(out.getvalue(), name, XLSX)


def _download(body: bytes, name: str, media: str) -> Response:
    return Response(body, media_type=media,
                    headers={"content-disposition": f'attachment; filename="{name}"'})


routes = [Route("/staff/call/{call}/chart/{name}.svg", chart, methods=["GET"]),
          Route("/staff/call/{call}/report.html", report, methods=["GET"]),
          Route("/staff/call/{call}/{kind}.{fmt}", published_list, methods=["GET"])]
