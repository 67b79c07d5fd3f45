"""Read-only views for people: a call's status, one application's whole story, and the report
(`starfund report`: figures from `lifecycle.reporting.figures`, charts, HTML and XLSX)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, func, select

from lifecycle.console import Env, OutputPath, common, echo, emit_json, json_option
from lifecycle.core import audit, clock
from lifecycle.core.errors import NotFound
from lifecycle.core.models import (
    Application,
    Assignment,
    Deadline,
    Notification,
    Objection,
    Society,
)
from lifecycle.core.progress import watching
from lifecycle.engine import engine
from lifecycle.engine.machine import for_workflow
from lifecycle.progress_bar import shown


def status(conn: Connection, call_id: str) -> dict[str, Any]:
    """Applications per state (in workflow order), money, and the deadlines still to come."""
    call = engine.load_call(conn, call_id)
    wm = for_workflow(call.workflow)
    counts = dict(conn.execute(select(Application.state, func.count())
                               .where(Application.call_id == call_id)
                               .group_by(Application.state)).all())
    order = [s.name for s in wm.workflow.states]
    states = [{"state": s, "label": wm.workflow.state(s).label, "count": counts[s]}
              for s in order if counts.get(s)]
    money = conn.execute(select(func.coalesce(func.sum(Application.requested_amount), 0),
                                func.coalesce(func.sum(Application.granted_amount), 0))
                         .where(Application.call_id == call_id)).one()
    now = clock.now()
    deadlines = [{"kind": d.kind, "due_at": d.due_at.isoformat(sep=" "), "fires": d.fires,
                  "action": d.action, "fired_at": d.fired_at.isoformat(sep=" ") if d.fired_at else None}
                 for d in conn.execute(select(Deadline.__table__).where(Deadline.call_id == call_id)
                                       .order_by(Deadline.due_at))]
    return {"call": call_id, "title": call.title, "workflow": call.workflow,
            "now": now.isoformat(sep=" "), "total": sum(counts.values()), "states": states,
            "requested": int(money[0]), "granted": int(money[1]), "budget": call.budget_total,
            "possible_triggers": wm.triggers_from(set(counts)),
            "deadlines": deadlines, "money": _money(conn, call_id=call_id)}


def show(conn: Connection, app_id: str) -> dict[str, Any]:
    """One application: its fields, reviews, money, objections, messages and full history."""
    app = conn.execute(select(Application.__table__).where(Application.id == app_id)).first()
    if app is None:
        raise engine.EngineError(f"no application {app_id!r}")
    data = dict(app._mapping)
    for k in ("declared_at", "updated_at"):
        data[k] = data[k].isoformat(sep=" ")
    reviews = [{"expert": r.expert_id, "status": r.status, "total": r.total, "scores": r.scores}
               for r in conn.execute(select(Assignment.__table__)
                                     .where(Assignment.application_id == app_id)
                                     .order_by(Assignment.expert_id))]
    objections = [{"id": o.id, "by": o.filed_by, "status": o.status, "reason": o.reason,
                   "resolution": o.resolution}
                  for o in conn.execute(select(Objection.__table__)
                                        .where(Objection.application_id == app_id)
                                        .order_by(Objection.id))]
    messages = [{"kind": n.kind, "to": n.recipient, "status": n.status, "attempts": n.attempts,
                 "sent_at": n.sent_at.isoformat(sep=" ") if n.sent_at else None,
                 "last_error": n.last_error}
                for n in conn.execute(select(Notification.__table__)
                                      .where(Notification.application_id == app_id)
                                      .order_by(Notification.id))]
    history = audit.query(conn, audit.Query(application_id=app_id, limit=None))
    return {"application": data, "reviews": reviews, "objections": objections,
            "notifications": messages, "history": history, "decisions": decisions(history),
            **_assessment_view(conn, app_id)}


def decisions(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every move of the application that says why, with its reasons whole: the decision it
    wrote (a ranking, an outcome, an upheld objection), the conditions that kept it from the
    other way (a failed formal check: `because`) and a reason given with the act. The
    history's details column cuts them short; `show` prints these in full."""
    out = []
    for h in history:
        payload = h.get("payload") or {}
        if not h.get("to_state"):
            continue
        decided = (payload.get("set") or {}).get("decision_reason") or ""
        reasons = [decided] if decided else []
        reasons += [str(r) for r in payload.get("because") or [] if str(r) not in decided]
        given = (payload.get("options") or {}).get("reason")
        if given and given not in decided:
            reasons.append(f"reason given: {given}")
        if reasons:
            out.append({"seq": h["seq"], "at": h["at"], "actor": h["actor"],
                        "action": h["action"], "from_state": h["from_state"],
                        "to_state": h["to_state"], "reasons": reasons})
    return out


def _money(conn: Connection, **where: str) -> dict[str, int]:
    from lifecycle.acts import payments

    return payments.money(conn, **where)


def _assessment_view(conn: Connection, app_id: str) -> dict[str, Any]:
    """Money, instalments, assessment checkpoints and the star indicator sheet of one application."""
    from lifecycle.acts import assessing, payments
    from lifecycle.core.models import StarScore

    sheet = [{"indicator": r.indicator, "self": r.self_score, "checked": r.checked_score,
              "final": r.final_score}
             for r in conn.execute(select(StarScore.__table__)
                                   .where(StarScore.application_id == app_id)
                                   .order_by(StarScore.id))]
    if sheet:
        app = conn.execute(select(Application.call_id, Application.society_class)
                           .where(Application.id == app_id)).one()
        star = engine.load_call(conn, app.call_id).star
        maxima = (star.sheet_for(app.society_class) or star.own_sheet()).maxima
        for r in sheet:
            r["max"] = maxima.get(r["indicator"])
    return {"money": payments.money(conn, application_id=app_id),
            "payments": payments.instalments(conn, app_id),
            "assessments": assessing.records(conn, app_id), "star_scores": sheet}


def known(conn: Connection, call_id: str | None = None, application_id: str | None = None,
          society_id: str | None = None) -> None:
    """Refuse a filter naming a call, application or society that does not exist."""
    if call_id is not None:
        engine.load_call(conn, call_id)
    if application_id is not None and conn.execute(
            select(Application.id).where(Application.id == application_id)).first() is None:
        raise NotFound(f"no application {application_id!r}")
    if society_id is not None and conn.execute(
            select(Society.id).where(Society.id == society_id)).first() is None:
        raise NotFound(f"no society {society_id!r}")


# --- command: starfund report ---------------------------------------------------------------

@click.command("report")
@click.argument("call_id", metavar="[CALL]", required=False)
@click.option("--year", type=click.IntRange(2000, 2100), help="Every call of this programme "
              "year (the year its declarations open), with the years before it side by side.")
@click.option("--society", "society_id", metavar="ID",
              help="One society's history across calls and years.")
@click.option("--html", "html_file", type=OutputPath(), metavar="FILE",
              help="Write the report as one self-contained HTML page (charts inline as SVG).")
@click.option("--xlsx", "xlsx_file", type=OutputPath(), metavar="FILE",
              help="Write the report's tables to a workbook.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the headings and chart titles.")
@json_option
@common
def report(env: Env, call_id: str | None, year: int | None, society_id: str | None,
           html_file: str | None, xlsx_file: str | None, lang: str) -> None:
    """A call's or a year's report with charts, as one self-contained HTML file.

    The funnel from declared to completed, budget requested/awarded/paid per
    category, scores per category with the cut line, reviews per expert and
    their normalised means, assessment grades and outcomes, the stars and
    their moves across years; with --society, one society's history. Opening
    the page needs no network. Without --html or --xlsx: the key figures.

    \b
    Example:  starfund report 2025-project --html report.html
              starfund report --year 2026 --html 2026.html --xlsx 2026.xlsx
    """
    from lifecycle.reporting import documents, figures

    if sum(x is not None for x in (call_id, year, society_id)) != 1:
        raise click.UsageError("name one of CALL, --year YEAR or --society ID")
    with shown(env, "report", lang=lang, interrupted="it only reads; nothing was written") \
            as progress, watching(progress), env.engine.connect() as conn:
        years = society = None
        if call_id:
            calls = [figures.report_data(conn, call_id)]
            title = calls[0]["call"]["title"]
        elif year:
            d = figures.year_data(conn, year)
            calls, years, title = d["calls"], d["years"], str(year)
        else:
            known(conn, society_id=society_id)
            calls, society = [], figures.society_data(conn, society_id)
            title = society["society"]["name"]
    title = f"{title} {documents.REPORT[lang]['society' if society else 'report']}"
    if html_file:
        Path(html_file).write_text(documents.report_html(
            calls, years, society, title, lang, clock.now().date().isoformat()),
            encoding="utf-8")
    if xlsx_file:
        documents.report_xlsx(xlsx_file, calls, years, society)
    if env.as_json:
        return emit_json({"calls": calls, "years": years, "society": society})
    for c in calls:
        m = c["money"]
        echo(f"{c['call']['id']}: " + " → ".join(f"{s['stage']} {s['count']}"
                                                 for s in c["funnel"]))
        echo(f"  awarded {sum(b['awarded'] for b in c['budget']):,}  paid {m['paid']:,}  "
             f"to recover {m['to_recover']:,}")
    for y in years or []:
        echo(f"{y['year']}: funded {y['funded']}, terminated {y['terminated']}; stars "
             + ", ".join(f"{k} {v}" for k, v in y["moves"].items()))
    if society:
        echo(f"{society['society']['id']}: {len(society['history'])} applications")
    for path in (html_file, xlsx_file):
        if path:
            echo(f"written: {path}")
