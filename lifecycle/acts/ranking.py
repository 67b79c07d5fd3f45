"""The ranking table (公平竞争) for people: a preview before `advance CALL rank`, the decisions
after, and the spreadsheet for the leadership meeting.

The rule itself (aggregation, the flag, ranking and the budget cut) is
`lifecycle.rules.ranking`; `states.competition` says which states it ranks.
"""
from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Connection, select

from lifecycle.console import Env, OutputPath, common, echo, emit_json, json_option
from lifecycle.console import table as print_table
from lifecycle.core import audit
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application
from lifecycle.engine import engine
from lifecycle.rules.ranking import Aggregate, call_aggregates, rank_call
from states.competition import CONTINUING, RANKABLE, RANKED, UNCOMMITTED
from states.review import IN_REVIEW

_NONE = Aggregate("", 0, 0.0, 0.0, 0.0, False)
"""What a continuation funded without competing shows for reviews (it had none)."""


def _events(conn: Connection, call_id: str, action: str) -> dict[str, dict[str, Any]]:
    """What a move decided, per application, as its audit events recorded it."""
    return {e["application_id"]: e["payload"].get("set", {}) for e in audit.query(
        conn, audit.Query(call_id=call_id, action=action, limit=None))}


def table(conn: Connection, call: CallConfig) -> dict[str, Any]:
    """The ranking table for people: stored results of ranked applications, else a preview;
    continuations funded without competing are listed with their budget's rows."""
    aggs = call_aggregates(conn, call)
    continued = _events(conn, call.id, "fund_continuation")
    apps = conn.execute(
        select(Application.id, Application.society_id, Application.society_class,
               Application.title, Application.category,
               Application.requested_amount, Application.declared_at, Application.state,
               Application.score, Application.rank, Application.recommended,
               Application.granted_amount, Application.decision_reason)
        .where(Application.call_id == call.id,
               Application.id.in_(list(aggs) + list(continued)))).all()
    reviewed = [a for a in apps if a.state in RANKABLE]
    preview: dict[str, dict[str, Any]] = {}
    waiting: dict[str, str] = {}
    if reviewed:
        preview, waiting, _ = rank_call(conn, call, [a.id for a in reviewed], RANKABLE,
                                        UNCOMMITTED)
    # what `rank` decided, as its audit events recorded it (later stages reuse the columns)
    decided = _events(conn, call.id, "rank")
    rows = []
    for a in apps:
        g = aggs.get(a.id, _NONE)
        if a.id in continued:
            d = continued[a.id]
            stage = CONTINUING
            res = {"rank": None, "score": None, "recommended": d.get("recommended"),
                   "grant": d.get("granted_amount"), "reason": d.get("decision_reason", "")}
        elif a.state in IN_REVIEW:
            stage = "in review"
            res = {"rank": None, "score": g.score, "recommended": None, "grant": None,
                   "reason": ""}
        elif a.state in RANKABLE:
            p = preview.get(a.id, {})
            stage = "preview" if p else "waiting"
            res = {"rank": p.get("rank"), "score": p.get("score", g.score),
                   "recommended": p.get("recommended"), "grant": p.get("granted_amount"),
                   "reason": p.get("decision_reason") or waiting.get(a.id, "")}
        elif a.id in decided:
            stage = RANKED
            d = decided[a.id]
            res = {"rank": d.get("rank"), "score": d.get("score"),
                   "recommended": d.get("recommended"), "grant": d.get("granted_amount"),
                   "reason": d.get("decision_reason", "")}
        else:
            stage = "not ranked"
            res = {"rank": None, "score": g.score, "recommended": None, "grant": None,
                   "reason": a.decision_reason}
        rows.append({"category": a.category, "class": a.society_class, **res,
                     "application": a.id,
                     "society": a.society_id, "title": a.title, "state": a.state,
                     "stage": stage, "reviews": g.reviews, "minimum": g.minimum,
                     "spread": g.spread, "flagged": g.flagged, "panel": g.panel,
                     "requested": a.requested_amount})
    order = {c.id: i for i, c in enumerate(call.categories)}
    classes = {k.id: i for i, k in enumerate(call.classes)}
    rows.sort(key=lambda r: (classes.get(r["class"], 99) if classes else 0,
                             order.get(r["category"], 99), r["stage"] != CONTINUING,
                             r["rank"] is None, r["rank"] or 0, -(r["score"] or 0),
                             r["application"]))
    return {"call": call.id, "pass_mark": call.review.pass_mark,
            "normalised": call.review.normalise, "by_class": bool(call.classes), "rows": rows}


def write_xlsx(data: dict[str, Any], path: str) -> None:
    """The ranking table as a spreadsheet for the leadership meeting (text cells inert)."""
    from lifecycle.core.tabular import new_workbook, xlsx_append

    wb = new_workbook()
    ws = wb.create_sheet("ranking")
    ws.freeze_panes = "A2"
    cols = (["class"] if data["by_class"] else []) + [
        "category", "rank", "application", "society", "title", "reviews", "score", "minimum",
        "spread", "flagged", "panel", "requested", "grant", "recommended", "state", "stage",
        "reason"]
    xlsx_append(ws, cols)
    for r in data["rows"]:
        xlsx_append(ws, [r[c] for c in cols])
    wb.save(path)


# --- commands: starfund rank -------------------------------------------------------------------

@click.command("rank")
@click.argument("call_id", metavar="CALL")
@click.option("--xlsx", type=OutputPath(), help="Also write the table to this XLSX.")
@json_option
@common
def rank_table(env: Env, call_id: str, xlsx: str | None) -> None:
    """The ranking table of CALL per category, with each application's reason.

    A call that divides its budget by class is ranked per class and category.
    Before `advance CALL rank` it is a preview of what ranking would decide;
    afterwards it shows what was decided. Flagged applications (reviewers
    disagree) are marked and wait for `review panel`; a support bonus is in the
    reason; continuations funded without competing are listed first.

    \b
    Example:  starfund rank 2025-project --xlsx ranking.xlsx
    """
    with env.engine.connect() as conn:
        data = table(conn, engine.load_call(conn, call_id))
    if xlsx:
        write_xlsx(data, xlsx)
    if env.as_json:
        return emit_json(data)
    echo(f"{call_id} ranking: pass mark {data['pass_mark']:g}"
         + (", totals normalised per expert" if data["normalised"] else ""))
    for group in dict.fromkeys((r["class"] if data["by_class"] else "", r["category"])
                               for r in data["rows"]):
        rows = [r for r in data["rows"]
                if ((r["class"] if data["by_class"] else ""), r["category"]) == group]
        name = "/".join(g for g in group if g)
        print_table(f"{name} ({rows[-1]['stage']})",
                    ["rank", "application", "score", "min", "spread", "n", "grant", "ok", "why"],
                    [[r["rank"], r["application"], r["score"], r["minimum"],
                      f"{r['spread']}" + (" FLAG" if r["flagged"] and r["panel"] is None else
                                          " panel" if r["panel"] is not None else ""),
                      r["reviews"], "" if r["grant"] is None else f"{r['grant']:,}",
                      {True: "yes", False: "no"}.get(r["recommended"], ""),
                      (r["reason"] or "").rsplit(": ", 1)[-1]] for r in rows])
    if xlsx:
        echo(f"written to {xlsx}")
