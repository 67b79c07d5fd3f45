"""The public notice (公示): open it and render the proposed list as an HTML page.

`publish` fires `open_notice` for the applications the leadership proposed (so
the notice period starts when the list is published), then renders
`templates/<lang>/public_notice.html` with the sandboxed, strict environment of
`notifications.render` (auto-escaped, since society-supplied titles go into HTML).
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, select

from lifecycle.acts import objections
from lifecycle.core import audit, clock, engine, permissions
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.console import Env, OutputPath, common, echo, emit_json, json_option
from lifecycle.core.models import Application, Society
from lifecycle.core.workdays import NotCovered
from lifecycle.rules import model_societies
from notifications.render import environment
from states import award
from states.outcome import BARS_NEXT_CALLS
from states.star_rating import RATED

TO_PUBLISH = (award.PROPOSED, RATED)
"""Applications `publish` opens the notice for: proposed projects, rated star declarations."""


def period_text(call: CallConfig, language: str) -> str:
    n = call.calendar.notice_days
    if call.calendar.notice_working_days:
        return f"{n} 个工作日" if language == "zh" else f"{n} working days"
    return f"{n} 天" if language == "zh" else f"{n} calendar days"


def context(conn: Connection, call: CallConfig, language: str) -> dict[str, Any]:
    """What the notice shows: the listed projects per category, amounts, period and channel;
    for a star call, also the model societies (示范学会) its rule would name."""
    ends = objections.notice_end(conn, call.id)
    opened = award.opened_at(conn, call.id)
    if ends is None:
        raise engine.EngineError(f"the public notice of {call.id} has not opened: propose first "
                                 f"(`starfund advance {call.id} propose`)")
    rows = conn.execute(
        select(Application.id, Application.title, Application.title_en, Application.category,
               Application.granted_amount, Application.rank, Application.society_id,
               Application.star_level, Society.name, Society.name_en)
        .join(Society, Society.id == Application.society_id)
        .where(Application.call_id == call.id, Application.state.in_(award.LISTED))
        .order_by(Application.category, Application.rank, Application.id)).all()
    times = [opened[r.id] for r in rows if r.id in opened]
    if times:  # the listed applications' own notice (later than the call's after a re-review)
        ends = max(call.notice_end(t) for t in times)
    groups = []
    for c in call.categories:
        items = [{"id": r.id, "title": r.title, "title_en": r.title_en, "society": r.name,
                  "society_en": r.name_en, "amount": r.granted_amount or 0}
                 for r in rows if r.category == c.id]
        if items:
            groups.append({"name": c.name, "name_en": c.name_en, "projects": items})
    items = [it for g in groups for it in g["projects"]]
    starts = (min(times) if times else clock.now()).date()
    named = model_societies.named(conn, call, {r.society_id: r.star_level or 0 for r in rows},
                                  clock.now(), BARS_NEXT_CALLS) \
        if call.workflow == "star" else {}
    models = [{"society": r.name, "society_en": r.name_en, "stars": "★" * (r.star_level or 0),
               "why": named[r.society_id]} for r in rows if r.society_id in named]
    return {"call": {"id": call.id, "title": call.title, "title_en": call.title_en},
            "groups": groups, "items": items, "total": sum(it["amount"] for it in items),
            "models": models,
            "starts": starts.isoformat(),
            "last_day": (ends - timedelta(seconds=1)).date().isoformat(),
            "ends": ends.isoformat(sep=" "), "period": period_text(call, language),
            "channel": call.review.objection_channel,
            "published": clock.now().date().isoformat()}


def render(ctx: dict[str, Any], language: str, templates: str | None = None) -> str:
    env = environment(templates)
    lang = language if language in ("zh", "en") else "zh"
    return env.get_template(f"{lang}/public_notice.html").render(ctx)


def publish(conn: Connection, call_id: str, path: str | Path, actor: str,
            language: str | None = None, templates: str | None = None) -> dict[str, Any]:
    """Open the notice for proposed applications (if any are waiting) and write the HTML page,
    in the caller's transaction (`conn`): the opening and its page's audit event go together."""
    actor = permissions.require(conn, actor, "notice.publish", engine.load_call(conn, call_id))
    call = engine.load_call(conn, call_id)
    waiting = conn.execute(select(Application.id).where(
        Application.call_id == call_id, Application.state.in_(TO_PUBLISH))).first()
    opened = 0
    if waiting is not None:
        try:  # a year the working-day calendar does not cover: refused before anything opens
            call.notice_end(clock.now())
        except NotCovered as e:
            raise NotCovered(e.year, f"{call_id}: a notice opened on {clock.now():%Y-%m-%d} "
                                     f"would count {call.calendar.notice_days} working days: ")\
                from None
        opened = engine.advance(conn, call_id, "open_notice", actor).moved_total
    lang = language or call.language
    ctx = context(conn, call, lang)
    html = render(ctx, lang, templates)
    Path(path).write_text(html, encoding="utf-8")
    audit.record(conn, actor, [audit.Event("notice_publish", call_id, payload={
        "file": Path(path).name, "sha256": hashlib.sha256(html.encode()).hexdigest(),
        "listed": len(ctx["items"]), "total": ctx["total"], "ends": ctx["ends"],
        "models": [m["society"] for m in ctx["models"]]})])
    return {"call": call_id, "opened": opened, "listed": len(ctx["items"]),
            "models": [m["society"] for m in ctx["models"]],
            "total": ctx["total"], "ends": ctx["ends"], "last_day": ctx["last_day"],
            "file": str(path)}


# --- commands: starfund notice ... -----------------------------------------------------------

@click.group("notice")
def notice_group() -> None:
    """The public notice (公示) of the proposed list."""


@notice_group.command("publish")
@click.argument("call_id", metavar="CALL")
@click.option("--html", "html", required=True, type=OutputPath(),
              help="Where to write the notice page.")
@click.option("--language", type=click.Choice(["zh", "en"]),
              help="Template language [default: the call's].")
@json_option
@common
def notice_publish(env: Env, call_id: str, html: str, language: str | None) -> None:
    """Open the public notice for the proposed applications and write it as an HTML page.

    Proposed applications (of a star call: rated declarations) enter the notice
    (open_notice) if they have not yet; the page lists them per category with
    amounts, the objection channel and the end date, and for a star call the
    model societies (示范学会) its rule would name. Publishing again re-renders
    the page.

    \b
    Example:  starfund notice publish 2025-project --html notice.html
    """
    with env.engine.begin() as conn:
        r = publish(conn, call_id, html, env.actor, language, env.settings.get("templates"))
    if env.as_json:
        return emit_json(r)
    echo(f"{html}: {r['listed']} project(s), {r['total']:,} yuan; "
         + (f"{len(r['models'])} proposed model society(ies); " if r["models"] else "")
         + "notice "
         + (f"opened for {r['opened']}, " if r["opened"] else "")
         + f"runs until {r['last_day']} (ends {r['ends']})")
