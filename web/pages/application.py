"""One application's page, as its reader may see it, and its files."""
from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from lifecycle.acts import drafts, objections, reports, views
from lifecycle.core.errors import NotFound
from lifecycle.engine import engine
from states.assessment import ASSESSMENT_DUE
from states.names import DECLARED, DRAFT
from states.roles import SOCIETY

from ..http import Ctx, Page, page


@page
def show(ctx: Ctx):
    app = views.application(ctx.conn, ctx.actor, ctx.params["app"])
    call = engine.load_call(ctx.conn, app.call_id)
    staff = views.is_staff(ctx.actor)
    own = ctx.actor.holds((SOCIETY,)) and ctx.actor.society_id == app.society_id
    data = {"app": app, "call": call, "staff": staff, "own": own,
            "state": views.state_label(ctx.conn, app.call_id, app.state),
            "files": drafts.attachments(ctx.conn, app.id),
            "society": views.society_name(ctx.conn, app.society_id),
            "editable": own and app.state == DRAFT,
            "withdrawable": own and app.state in (DRAFT, DECLARED),
            "report_due": own and app.state == ASSESSMENT_DUE}
    if staff:
        data["full"] = reports.show(ctx.conn, app.id)
        data["contacts"] = views.objection_contacts(ctx.conn, ctx.actor, app.id)
        data["hidden"] = objections.HIDDEN
    elif own:
        data["moves"] = views.moves_of(ctx.conn, app.id)
        data["messages"] = views.messages_to_society(ctx.conn, app)
    else:  # an expert assigned to it
        data["assignment"] = next((a for a in views.assignments(ctx.conn, ctx.actor.expert_id)
                                   if a["application_id"] == app.id), None)
    return Page("application.html", data)


@page
def download(ctx: Ctx):
    """A file of an application the caller may see, always as a download (never rendered)."""
    try:
        file_id = int(ctx.params["file"])
    except ValueError:
        raise NotFound("no such file") from None
    row = drafts.attachment(ctx.conn, file_id)
    views.application(ctx.conn, ctx.actor, row.application_id)  # NotFound when not theirs
    return Response(bytes(row.data), media_type="application/octet-stream", headers={
        "content-disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
        "x-content-type-options": "nosniff"})


routes = [
    Route("/app/{app}", show, methods=["GET"]),
    Route("/files/{file}", download, methods=["GET"]),
]
