"""Moving applications and looking at them: `advance`, `status`, `show`, `workflow show`.

`starfund advance` goes cli.py -> here -> lifecycle.engine.engine (which writes through
lifecycle.core.bulk and lifecycle.core.audit, and queues and schedules through
notifications.queue and lifecycle.core.deadlines), in one transaction this module opens.
"""
from __future__ import annotations

import json

import click

from lifecycle.acts import reports
from lifecycle.console import Env, common, echo, emit_json, json_option, show_report, table
from lifecycle.core import clock, deadlines
from lifecycle.engine import engine
from lifecycle.engine.machine import UnknownWorkflow, for_workflow
from lifecycle.progress_bar import shown

NOTHING_MOVED = 3
"""`advance`'s exit status when it moved nothing because every candidate was refused (the report
is printed, --json too): a script can tell it from success (0), a mistake (1) and usage (2)."""


@click.command()
@click.argument("call_id", metavar="CALL")
@click.argument("trigger")
@click.option("--only", multiple=True, metavar="ID", help="Only these applications (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--reason", help="Why (recorded in the audit trail).")
@json_option
@common
def advance(env: Env, call_id: str, trigger: str, only: tuple[str, ...], dry_run: bool,
            reason: str | None) -> None:
    """Fire TRIGGER on every application of CALL that can take it, as one transaction.

    Prints how many moved and why the others were skipped. See the triggers
    with `starfund workflow show`. Exit status 3 when nothing moved because every
    application that could take TRIGGER was refused (e.g. submit after the window
    closed); the report (--json too) is printed all the same.

    \b
    Example:  starfund advance 2025-project close_declaration --dry-run
              starfund advance 2025-project propose --only 2025-project-00012
    """
    actor = env.actor
    with shown(env, f"{call_id} {trigger}",
               interrupted="nothing was written (the batch's transaction was rolled back: "
                           "it moves whole or not at all)") as progress, \
            env.engine.begin() as conn:
        report = engine.advance(conn, call_id, trigger, actor, only=list(only) or None,
                                dry_run=dry_run, options={"reason": reason} if reason else None,
                                progress=progress)
    show_report(env, report)
    if not report.moved_total and report.skipped_total:
        click.get_current_context().exit(NOTHING_MOVED)


@click.command()
@click.argument("call_id", metavar="CALL")
@json_option
@common
def status(env: Env, call_id: str) -> None:
    """Applications of CALL per state, money, and its deadlines.

    \b
    Example:  starfund status 2025-project
    """
    with env.engine.connect() as conn:
        s = reports.status(conn, call_id)
        s["deadlines"] = [{k: d[k] for k in ("kind", "due_at", "fires", "action", "fired_at",
                                             "standing", "note")}
                          for d in deadlines.listing(conn, call_id)]
    s["zone"] = clock.zone().key
    if env.as_json:
        return emit_json(s)
    table(f"{s['call']} {s['title']} ({s['total']} applications, now {s['now']})",
          ["state", "label", "count"], [[r["state"], r["label"], r["count"]] for r in s["states"]])
    echo(f"requested {s['requested']:,}  granted {s['granted']:,}  budget {s['budget']:,}")
    if s.get("money"):
        m = s["money"]
        echo(f"paid {m['paid']:,}  due {m['due']:,}  planned {m['planned']:,}  "
             f"withheld {m['withheld']:,}  to recover {m['to_recover']:,}")
    echo(f"possible triggers now: {', '.join(s['possible_triggers']) or 'none'}")
    if s["deadlines"]:
        table(f"deadlines (times {deadlines.zone_label()})", ["kind", "due", "fires", "status"],
              [[d["kind"], d["due_at"][:16], d["fires"],
                d["standing"] + (f" {d['fired_at'][:16]}" if d["fired_at"] else "")
                + (f": {d['note'][:40]}" if d["standing"] == "skipped" else "")]
               for d in s["deadlines"]])


@click.command()
@click.argument("app_id", metavar="APPLICATION")
@json_option
@common
def show(env: Env, app_id: str) -> None:
    """One application: fields, scores, money, messages, its decisions with their reasons
    (whole) and its full history.

    \b
    Example:  starfund show 2025-project-00001
    """
    with env.engine.connect() as conn:
        d = reports.show(conn, app_id)
    if env.as_json:
        return emit_json(d)
    a = d["application"]
    echo(f"{a['id']}  {a['title']}  [{a['state']}] v{a['version']}")
    echo(f"  society {a['society_id']}"
         + (f" (class {a['society_class']})" if a.get("society_class") else "")
         + f"  category {a['category']}  "
         f"requested {a['requested_amount']:,}  granted {a['granted_amount'] or 0:,}  "
         f"score {a['score'] if a['score'] is not None else '-'}  rank {a['rank'] or '-'}")
    if a["decision_reason"]:
        echo(f"  decision: {a['decision_reason']}")
    if d["decisions"]:
        echo("decisions (each move that says why, its reasons whole)")
        for m in d["decisions"]:
            echo(f"  {m['at'][:16]}  {m['action']}: {m['from_state']} -> {m['to_state']}  "
                 f"(by {m['actor']})")
            for reason in m["reasons"]:
                echo(f"    {reason}")
    if d.get("money") and d.get("payments"):
        m = d["money"]
        echo(f"  money: paid {m['paid']:,}  due {m['due']:,}  planned {m['planned']:,}  "
             f"withheld {m['withheld']:,}  to recover {m['to_recover']:,}")
        table("payments", ["#", "instalment", "on", "amount", "status", "due", "paid"],
              [[p["seq"], p["label"], p["release"],
                f"{p['amount']:,}" + (f" (of {p['planned']:,})" if p["amount"] != p["planned"]
                                      else ""),
                p["status"], (p["due_at"] or "")[:10], (p["paid_at"] or "")[:10]]
               for p in d["payments"]])
    if d.get("assessments"):
        table("assessment", ["checkpoint", "report", "late", "score", "grade"],
              [[r["checkpoint"], r["report"] or "-", r["late"], r["score"], r["grade"]]
               for r in d["assessments"]])
    if d.get("star_scores"):
        table("indicator sheet", ["indicator", "max", "self", "checked", "final"],
              [[r["indicator"], r["max"], r["self"], r["checked"], r["final"]]
               for r in d["star_scores"]])
    if d["reviews"]:
        table("reviews", ["expert", "status", "total"],
              [[r["expert"], r["status"], r["total"]] for r in d["reviews"]])
    if d["objections"]:
        table("objections", ["id", "by", "status", "reason", "resolution"],
              [[o["id"], o["by"], o["status"], o["reason"], o["resolution"]]
               for o in d["objections"]])
    if d["notifications"]:
        table("notifications", ["kind", "to", "status", "sent"],
              [[n["kind"], n["to"], n["status"], n["sent_at"]] for n in d["notifications"]])
    table("history", ["seq", "at", "actor", "action", "from", "to", "details"],
          [[h["seq"], h["at"], h["actor"], h["action"], h["from_state"], h["to_state"],
            json.dumps(h["payload"], ensure_ascii=False)[:80]] for h in d["history"]])


@click.group("workflow")
def workflow_group() -> None:
    """Inspect workflows."""


@workflow_group.command("show")
@click.argument("name", default="project")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid"]), default="text",
              show_default=True)
@common
def workflow_show(env: Env, name: str, fmt: str) -> None:
    """The states and transitions of a workflow (mermaid: a stateDiagram from transitions).

    \b
    Example:  starfund workflow show project --format mermaid > project.mmd
    """
    try:
        wm = for_workflow(name)
    except UnknownWorkflow as e:
        raise click.ClickException(str(e)) from None
    echo(wm.mermaid() if fmt == "mermaid" else wm.text())
