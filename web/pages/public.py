"""Pages anyone may open: the front page and the 公示 of a call in notice."""
from __future__ import annotations

from starlette.routing import Route

from lifecycle.acts import notice, views
from lifecycle.core.errors import NotFound
from lifecycle.engine import engine

from ..http import Ctx, Page, page


@page(login=False)
def front(ctx: Ctx):
    """The notices running now, and the way in."""
    return Page("public/front.html", {"notices": views.notices(ctx.conn)})


@page(login=False)
def notice_page(ctx: Ctx):
    """The 公示 of a call: the proposed awards, the period and how to object (no login)."""
    call_id = ctx.params["call"]
    running = {n["id"]: n for n in views.notices(ctx.conn)}
    if call_id not in running:
        raise NotFound(f"no public notice of {call_id} is running")
    call = engine.load_call(ctx.conn, call_id)
    data = notice.context(ctx.conn, call, ctx.lang)
    return Page("public/notice.html", {"n": data, "call": call})


routes = [
    Route("/", front, methods=["GET"]),
    Route("/notice/{call}", notice_page, methods=["GET"]),
]
