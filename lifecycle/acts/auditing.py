"""The audit trail's commands: query it, verify it (`starfund audit ...`).

The trail itself (the keyed hash chain, queries, checks) is lifecycle.core.audit.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from lifecycle.acts.reports import known
from lifecycle.core import audit
from lifecycle.core.console import (
    ISO_TIME,
    MAX_COUNT,
    Env,
    common,
    csv_cell,
    echo,
    emit_json,
    json_option,
    table,
)
from lifecycle.core.tabular import csv_writer


@click.group("audit")
def audit_group() -> None:
    """The audit trail: who moved what, when and why."""


@audit_group.command("query")
@click.option("--call", "call_id", help="Only this call.")
@click.option("--application", "application_id", help="Only this application.")
@click.option("--actor", help="Only this actor.")
@click.option("--trigger", "action", help="Only this trigger or act (e.g. close_declaration, score).")
@click.option("--since", type=ISO_TIME, help="From this ISO time (inclusive).")
@click.option("--until", type=ISO_TIME, help="Before this ISO time.")
@click.option("--newest-first", is_flag=True, help="Newest events first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0, MAX_COUNT),
              help="Events per page (0: all).")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1, MAX_COUNT),
              help="Page number.")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to stdout.")
@json_option
@common
def audit_query(env: Env, call_id: str | None, application_id: str | None, actor: str | None,
                action: str | None, since: datetime | None, until: datetime | None,
                newest_first: bool,
                limit: int, page: int, as_csv: bool) -> None:
    """Query the audit trail.

    \b
    Example:  starfund audit query --call 2025-project --trigger close_declaration
              starfund audit query --actor scheduler --since 2025-04-01 --csv > audit.csv
    """
    q = audit.Query(call_id=call_id, application_id=application_id, actor=actor, action=action,
                    since=since, until=until, newest_first=newest_first,
                    limit=limit or None, offset=(page - 1) * limit if limit else 0)
    with env.engine.connect() as conn:
        known(conn, call_id, application_id)
        if as_csv:
            w = csv_writer(sys.stdout)
            cols = ["seq", "at", "actor", "action", "call_id", "application_id", "from_state",
                    "to_state", "payload", "hash"]
            w.writerow(cols)
            rows = audit.iter_rows(conn, q) if not limit else audit.query(conn, q)
            for r in rows:
                w.writerow([csv_cell(json.dumps(r[c], ensure_ascii=False) if c == "payload"
                                     else r[c]) for c in cols])
            return
        rows = audit.query(conn, q)
    if env.as_json:
        return emit_json(rows)
    table(f"audit events (page {page})", ["seq", "at", "actor", "action", "application", "from",
                                          "to", "details"],
          [[r["seq"], r["at"], r["actor"], r["action"], r["application_id"], r["from_state"],
            r["to_state"], json.dumps(r["payload"], ensure_ascii=False)[:70]] for r in rows])


@audit_group.command("verify")
@json_option
@common
def audit_verify(env: Env) -> None:
    """Check the audit trail: its hash chain, and that it explains the applications.

    Every application's state must be where its last audit event left it, every
    application must have its creation event, and a database with applications
    must have a trail. Reports every problem found, one line each (exit 1).

    \b
    Example:  starfund audit verify
    """
    with env.engine.connect() as conn:
        result = audit.check(conn)
    broken = result.first_break
    if env.as_json:
        emit_json({"checked": result.checked, "ok": result.ok,
                   "applications": result.applications,
                   "broken_at": broken.seq if broken else None,
                   "problem": broken.problem if broken else None,
                   "problems": [p.__dict__ for p in result.problems]})
    elif result.ok:
        echo(f"audit chain intact: {result.checked} events verified; "
             f"{result.applications} applications agree with their trail")
    else:
        echo(f"audit trail BROKEN: {len(result.problems)} problem(s) "
             f"({result.checked} events read)", err=True)
        for p in result.problems:
            echo(f"  {p.message}", err=True)
    if not result.ok:
        sys.exit(1)
