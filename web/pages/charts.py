"""The report's charts on the staff dashboard: the same figures and SVG as `starfund report`
(lifecycle.reporting), served as images so the page itself keeps its strict CSP."""
from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from lifecycle.core.errors import NotFound
from lifecycle.reporting import charts, figures

from ..http import Ctx, page
from .staff import staff_only

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


routes = [Route("/staff/call/{call}/chart/{name}.svg", chart, methods=["GET"])]
