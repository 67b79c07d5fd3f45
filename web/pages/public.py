"""Pages anyone may open: the front page, the 公示 of a call and its award list (立项名单), and
the archive of every notice and award list published, which stay at their addresses after the
notice closes (with the dates they ran)."""
from __future__ import annotations

from starlette.routing import Route

from lifecycle.acts import notice, views
from lifecycle.core.errors import NotFound
from lifecycle.engine import engine
from lifecycle.reporting import published
from states import award

from ..http import Ctx, Page, page


@page(login=False)
def front(ctx: Ctx):
    """The notices running now, the way to the archive, and the way in."""
    return Page("public/front.html", {"notices": views.notices(ctx.conn)})


def _published_call(ctx: Ctx):
    """The call of the address, if its notice ever opened (else 404, as for no such call)."""
    call_id = ctx.params["call"]
    if call_id not in award.notices_opened(ctx.conn):
        raise NotFound(f"no public notice of {call_id}")
    return engine.load_call(ctx.conn, call_id)


@page(login=False)
def notice_page(ctx: Ctx):
    """The 公示 of a call: the proposed awards, the period and how to object (no login); once
    the period is over, the same list as it was published, marked closed, at the same address."""
    call = _published_call(ctx)
    data = notice.context(ctx.conn, call, ctx.lang)
    awarded = not data["running"] and _awards(ctx, call) is not None
    return Page("public/notice.html", {"n": data, "call": call, "awarded": awarded})


def _awards(ctx: Ctx, call):
    try:
        return published.awards_data(ctx.conn, call, ctx.lang)
    except published.NothingPublished:
        return None


@page(login=False)
def awards_page(ctx: Ctx):
    """The award list (立项名单) of a call once its notice closed, with the date of the award."""
    call = _published_call(ctx)
    data = _awards(ctx, call)
    if data is None:
        raise NotFound(f"no award list of {call.id} yet")
    return Page("public/awards.html", {"a": data})


@page(login=False)
def archive(ctx: Ctx):
    """Every notice and award list published, newest first, with the dates they ran."""
    return Page("public/archive.html", {"calls": published.archive(ctx.conn, ctx.lang)})


routes = [
    Route("/", front, methods=["GET"]),
    Route("/notice/{call}", notice_page, methods=["GET"]),
    Route("/awards/{call}", awards_page, methods=["GET"]),
    Route("/archive", archive, methods=["GET"]),
]
