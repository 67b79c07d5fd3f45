"""The public notice (公示): open it and render the proposed list as an HTML page; export the
notice and the final award list (立项名单) read-only, as HTML, XLSX and PDF.

`publish` fires `open_notice` for the applications the leadership proposed (so
the notice period starts when the list is published), then renders
`templates/<lang>/public_notice.html` with the sandboxed, strict environment of
`notifications.render` (auto-escaped, since society-supplied titles go into HTML).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, select

from lifecycle import kinds
from lifecycle.console import Env, OutputPath, common, echo, emit_json, json_option
from lifecycle.core import audit, clock
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application
from lifecycle.core.workdays import NotCovered
from lifecycle.engine import engine, permissions
from lifecycle.reporting import documents, published
from lifecycle.rules import model_societies
from notifications.reasons import localise
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
    """What the published page shows: the applications that entered the notice per category,
    amounts, the period their entries gave them and the channel (`published.notice_data`, so a
    page published again after the notice shows the list and period that were published);
    for a star call, also the model societies (示范学会) its rule would name when the notice
    opened (so the page reads the same after the notice, in the public archive)."""
    opened = award.opened_at(conn, call.id)
    if opened == {}:
        raise engine.EngineError(f"the public notice of {call.id} has not opened: propose first "
                                 f"(`starfund advance {call.id} propose`)")
    d = published.notice_data(conn, call, language)
    groups = [{"name": g["name"], "name_en": g["name"], "projects": [
        {**p, "title_en": p["title"], "society_en": p["society"]} for p in g["projects"]]}
        for g in d["groups"]]
    items = [it for g in groups for it in g["projects"]]
    levels = {p["society_id"]: p["stars"] for p in items}
    names = {p["society_id"]: p["society"] for p in items}
    named = model_societies.named(conn, call, levels, max(opened.values()), BARS_NEXT_CALLS,
                                  kinds.history().counts_for_models) \
        if kinds.of(call.workflow).rates_stars else {}
    models = [{"society": names[s], "society_en": names[s], "stars": "★" * levels[s],
               "why": localise(why, language)} for s, why in sorted(named.items())]
    return {"call": {"id": call.id, "title": call.title, "title_en": call.title_en},
            "groups": groups, "items": items, "total": d["total"], "models": models,
            "starts": d["starts"], "last_day": d["last_day"], "ends": d["ends"],
            "period": period_text(call, language), "channel": d["call"]["channel"],
            "running": d["running"],
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


def export(conn: Connection, call_id: str, kind: str, lang: str,
           files: dict[str, str | None]) -> dict[str, Any]:
    """Write the notice (`kind` "notice") or the award list ("awards") of CALL to the files
    given per format (html, xlsx, pdf); read-only: nothing in the database changes."""
    call = engine.load_call(conn, call_id)
    data = (published.notice_data if kind == "notice" else published.awards_data)(conn, call, lang)
    html = (documents.notice_html if kind == "notice" else documents.awards_html)(data)
    for fmt, path in files.items():
        if not path:
            continue
        if fmt == "xlsx":
            headers, rows = documents.listing_rows(data)
            documents.write_xlsx(path, "公示" if kind == "notice" else "立项名单", headers, rows)
        else:
            documents.write(html, path, fmt)
    return {k: data[k] for k in data if k not in ("groups",)} | {
        "rows": [{"category": g["id"], **p} for g in data["groups"] for p in g["projects"]],
        "files": {k: v for k, v in files.items() if v}}


def export_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--html", "html_file", type=OutputPath(), metavar="FILE",
                     help="Write an HTML page (self-contained)."),
        click.option("--xlsx", "xlsx_file", type=OutputPath(), metavar="FILE",
                     help="Write a spreadsheet (text cells made inert)."),
        click.option("--pdf", "pdf_file", type=OutputPath(), metavar="FILE",
                     help="Write a PDF (A4, CJK fonts)."),
        click.option("--lang", type=click.Choice(["zh", "en"]), default="zh",
                     show_default=True, help="Headings and names in Chinese or English."),
        json_option]):
        fn = option(fn)
    return fn


def _exported(env: Env, call_id: str, kind: str, lang: str, files: dict[str, str | None]) -> None:
    with env.engine.connect() as conn:
        r = export(conn, call_id, kind, lang, files)
    if env.as_json:
        return emit_json(r)
    what = "public notice" if kind == "notice" else "award list"
    echo(f"{call_id} {what}: {r['count']} listed, {r['total']:,} yuan"
         + (f"; notice {r['starts']} to {r['last_day']}" if r.get("starts") else "")
         + ("; a draft (the notice has not opened)" if kind == "notice" and r["draft"] else ""))
    for path in r["files"].values():
        echo(f"  written: {path}")


@notice_group.command("export")
@click.argument("call_id", metavar="CALL")
@export_options
@common
def notice_export(env: Env, call_id: str, html_file: str | None, xlsx_file: str | None,
                  pdf_file: str | None, lang: str) -> None:
    """The public notice (公示) list of CALL, at any time, read-only: the applications that
    entered the notice (before it opens: a draft of those proposed), per category, with
    society names, amounts, the notice period and the objection channel of the call.

    \b
    Example:  starfund notice export 2025-project --pdf notice.pdf --xlsx notice.xlsx
    """
    _exported(env, call_id, "notice", lang, {"html": html_file, "xlsx": xlsx_file,
                                             "pdf": pdf_file})


@click.group("awards")
def awards_group() -> None:
    """The final award list (立项名单) of a call, after its public notice."""


@awards_group.command("export")
@click.argument("call_id", metavar="CALL")
@export_options
@common
def awards_export(env: Env, call_id: str, html_file: str | None, xlsx_file: str | None,
                  pdf_file: str | None, lang: str) -> None:
    """The final award list (立项名单) of CALL once its notice has closed: every application the
    notice awarded (a star call: every society it starred), with society names and amounts.

    \b
    Example:  starfund awards export 2025-project --pdf awards.pdf
    """
    _exported(env, call_id, "awards", lang, {"html": html_file, "xlsx": xlsx_file,
                                             "pdf": pdf_file})
