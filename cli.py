"""The starfund command line: parse, call the engine, print. No business rules here.

Every command takes --db, --as and --now; every command that prints data
takes --json. Errors are one clear message on stderr and a non-zero exit.
"""
from __future__ import annotations

import csv
import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from lifecycle import audit, calls, clock, db, engine, reports
from lifecycle.callconfig import ConfigError
from lifecycle.tabular import InputError

console = Console(highlight=False, soft_wrap=True)
EXPECTED_ERRORS = (engine.EngineError, InputError, ConfigError, LookupError, ValueError)


class Env:
    """What every command receives: the database, the actor, and --json."""

    def __init__(self, db_arg: str | None, actor: str | None, as_json: bool = False) -> None:
        self.db_arg, self.actor, self.as_json = db_arg, actor or engine.default_actor(), as_json
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = db.make_engine(self.db_arg)
            db.require_schema(self._engine)
        return self._engine


def common(fn: Callable) -> Callable:
    """--db, --as and --now on every command (they may also be given before the command)."""

    @click.option("--db", "db_arg", envvar="STARFUND_DB", metavar="URL|FILE",
                  help="Database: a SQLite file or any SQLAlchemy URL [env STARFUND_DB; "
                       "default starfund.db].")
    @click.option("--as", "as_actor", envvar="STARFUND_ACTOR", metavar="ACTOR",
                  help="Who acts, for the audit trail [env STARFUND_ACTOR; default: OS user].")
    @click.option("--now", "at_now", metavar="ISO-TIME",
                  help="Pretend it is this time (simulation, back-dated entry).")
    @functools.wraps(fn)
    def wrapper(*args: Any, db_arg: str | None, as_actor: str | None, at_now: str | None,
                **kwargs: Any) -> Any:
        parent = click.get_current_context().find_root().obj or {}
        if at_now or parent.get("now"):
            clock.set_now(at_now or parent["now"])
        env = Env(db_arg or parent.get("db"), as_actor or parent.get("actor"),
                  kwargs.pop("as_json", False))
        try:
            return fn(env, *args, **kwargs)
        except EXPECTED_ERRORS as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
    return wrapper


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_arg", envvar="STARFUND_DB", metavar="URL|FILE", help="Database (see init).")
@click.option("--as", "actor", metavar="ACTOR", help="Who acts (see any command).")
@click.option("--now", metavar="ISO-TIME", help="Pretend it is this time.")
@click.version_option("0.1.0", prog_name="starfund")
@click.pass_context
def main(ctx: click.Context, db_arg: str | None, actor: str | None, now: str | None) -> None:
    """starfund: run a public funding programme from call to outcome.

    \b
    Start with:  starfund demo          (a whole simulated programme year)
    Then:        starfund status 2025-project
                 starfund audit query --call 2025-project
    """
    ctx.obj = {"db": db_arg, "actor": actor, "now": now}


# --- setup --------------------------------------------------------------------

@main.command()
@common
def init(env: Env) -> None:
    """Create the database, or upgrade an existing one to the newest schema.

    \b
    Example:  starfund init --db programme.db
              starfund init --db postgresql://postgres@127.0.0.1/starfund
    """
    e = db.make_engine(env.db_arg)
    done = db.upgrade(e)
    click.echo(f"database {done}: {e.url.render_as_string()}")


@main.command()
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 10),
              help="Programme years to run in a row.")
@click.option("--seed", default=2025, show_default=True, help="Random seed of the simulation.")
@click.option("--outbox", default="outbox", show_default=True, type=click.Path(),
              help="Folder the notifications are delivered to.")
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start from a new database file (SQLite only).")
@common
def demo(env: Env, years: int, seed: int, outbox: str, fresh: bool) -> None:
    """Simulate a whole programme year (or several) on a new database, printing each step.

    \b
    Example:  starfund demo
              starfund demo --years 3 --db demo.db
    """
    from lifecycle import demo as demo_mod

    demo_mod.run(env.db_arg or "starfund-demo.db", years=years, seed=seed, outbox=outbox,
                 fresh=fresh, actor=env.actor, out=console)


# --- calls and imports --------------------------------------------------------------

@main.group("call")
def call_group() -> None:
    """Create and list calls (funding rounds)."""


@call_group.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@common
def call_create(env: Env, file: str) -> None:
    """Create a call from a TOML file (see examples/call.toml).

    \b
    Example:  starfund call create examples/call.toml
    """
    with db.transaction(env.engine) as s:
        config = calls.create_from_file(s.connection(), file, env.actor)
    click.echo(f"call {config.id} created: {config.title} ({config.workflow}, "
               f"{len(config.categories)} categories, budget {config.budget_total:,})")


@call_group.command("list")
@json_option
@common
def call_list(env: Env) -> None:
    """List the calls.

    \b
    Example:  starfund call list --json
    """
    with env.engine.connect() as conn:
        rows = calls.list_calls(conn)
    if env.as_json:
        return emit_json(rows)
    table("calls", ["id", "title", "workflow", "created"],
          [[r["id"], r["title"], r["workflow"], r["created_at"]] for r in rows])


def _import(env: Env, fn: Callable, *args: Any) -> dict:
    with db.transaction(env.engine) as s:
        return fn(s.connection(), *args, env.actor)


@main.group("society")
def society_group() -> None:
    """Societies (学会): import them."""


@society_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@common
def society_import(env: Env, file: str) -> None:
    """Import societies from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    annual_inspection_passed, penalty.

    \b
    Example:  starfund society import societies.xlsx
    """
    from lifecycle import registry

    r = _import(env, registry.import_societies, file)
    click.echo(f"societies: {r['created']} created, {r['updated']} updated")


@main.group("expert")
def expert_group() -> None:
    """Experts (专家): import them."""


@expert_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@common
def expert_import(env: Env, file: str) -> None:
    """Import experts from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    disciplines, societies, conflict_societies, conflict_institutions
    (lists separated by ';').

    \b
    Example:  starfund expert import experts.csv
    """
    from lifecycle import registry

    r = _import(env, registry.import_experts, file)
    click.echo(f"experts: {r['created']} created, {r['updated']} updated")


@main.group("application")
def application_group() -> None:
    """Applications (申报项目): import declarations."""


@application_group.command("import")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=click.Path(dir_okay=False))
@common
def application_import(env: Env, call_id: str, file: str) -> None:
    """Import declarations into CALL as drafts (all or nothing).

    Columns: society_id, category, title, requested_amount; optional id,
    title_en, discipline, summary, excluded_experts.

    \b
    Example:  starfund application import 2025-project declarations.xlsx
    """
    from lifecycle import declarations

    r = _import(env, declarations.import_applications, call_id, file)
    click.echo(f"applications: {r['created']} drafts created in {call_id}")


# --- moving applications ------------------------------------------------------------

def print_report(report: engine.Report) -> None:
    verb = "would move" if report.dry_run else "moved"
    click.echo(f"{report.call_id} {report.trigger}: {verb} {report.moved_total}, "
               f"skipped {report.skipped_total}" + (" (dry run: nothing written)"
                                                     if report.dry_run else ""))
    for (src, dst), n in sorted(report.moved.items()):
        click.echo(f"  {n} {src} -> {dst}")
    for reason, n in report.skipped.most_common():
        click.echo(f"  {n} skipped: {reason}")


@main.command()
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
    with `starfund workflow show`.

    \b
    Example:  starfund advance 2025-project close_declaration --dry-run
              starfund advance 2025-project propose --only 2025-project-00012
    """
    report = engine.advance(env.engine, call_id, trigger, env.actor, only=list(only) or None,
                            dry_run=dry_run, options={"reason": reason} if reason else None)
    if env.as_json:
        return emit_json(report.as_dict())
    print_report(report)


@main.command()
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
    if env.as_json:
        return emit_json(s)
    table(f"{s['call']} {s['title']} ({s['total']} applications, now {s['now']})",
          ["state", "label", "count"], [[r["state"], r["label"], r["count"]] for r in s["states"]])
    click.echo(f"requested {s['requested']:,}  granted {s['granted']:,}  budget {s['budget']:,}")
    click.echo(f"possible triggers now: {', '.join(s['possible_triggers']) or 'none'}")
    if s["deadlines"]:
        table("deadlines", ["kind", "due", "fires", "fired"],
              [[d["kind"], d["due_at"], d["fires"], d["fired_at"] or "pending"]
               for d in s["deadlines"]])


@main.command()
@click.argument("app_id", metavar="APPLICATION")
@json_option
@common
def show(env: Env, app_id: str) -> None:
    """One application: fields, scores, money, messages and its full history.

    \b
    Example:  starfund show 2025-project-00001
    """
    with env.engine.connect() as conn:
        d = reports.show(conn, app_id)
    if env.as_json:
        return emit_json(d)
    a = d["application"]
    click.echo(f"{a['id']}  {a['title']}  [{a['state']}] v{a['version']}")
    click.echo(f"  society {a['society_id']}  category {a['category']}  "
               f"requested {a['requested_amount']:,}  granted {a['granted_amount'] or 0:,}  "
               f"score {a['score'] if a['score'] is not None else '-'}  rank {a['rank'] or '-'}")
    if a["decision_reason"]:
        click.echo(f"  decision: {a['decision_reason']}")
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


@main.group("workflow")
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
    from lifecycle.machine import UnknownWorkflow, for_workflow

    try:
        wm = for_workflow(name)
    except UnknownWorkflow as e:
        raise click.ClickException(str(e))
    click.echo(wm.mermaid() if fmt == "mermaid" else wm.text())


# --- audit ---------------------------------------------------------------------------

@main.group("audit")
def audit_group() -> None:
    """The audit trail: who moved what, when and why."""


@audit_group.command("query")
@click.option("--call", "call_id", help="Only this call.")
@click.option("--application", "application_id", help="Only this application.")
@click.option("--actor", help="Only this actor.")
@click.option("--trigger", "action", help="Only this trigger or act (e.g. close_declaration, score).")
@click.option("--since", help="From this ISO time (inclusive).")
@click.option("--until", help="Before this ISO time.")
@click.option("--newest-first", is_flag=True, help="Newest events first.")
@click.option("--limit", default=50, show_default=True, help="Events per page (0: all).")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1), help="Page number.")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to stdout.")
@json_option
@common
def audit_query(env: Env, call_id: str | None, application_id: str | None, actor: str | None,
                action: str | None, since: str | None, until: str | None, newest_first: bool,
                limit: int, page: int, as_csv: bool) -> None:
    """Query the audit trail.

    \b
    Example:  starfund audit query --call 2025-project --trigger close_declaration
              starfund audit query --actor scheduler --since 2025-04-01 --csv > audit.csv
    """
    q = audit.Query(call_id=call_id, application_id=application_id, actor=actor, action=action,
                    since=clock.parse(since) if since else None,
                    until=clock.parse(until) if until else None, newest_first=newest_first,
                    limit=limit or None, offset=(page - 1) * limit if limit else 0)
    with env.engine.connect() as conn:
        if as_csv:
            w = csv.writer(sys.stdout)
            cols = ["seq", "at", "actor", "action", "call_id", "application_id", "from_state",
                    "to_state", "payload", "hash"]
            w.writerow(cols)
            rows = audit.iter_rows(conn, q) if not limit else audit.query(conn, q)
            for r in rows:
                w.writerow([json.dumps(r[c], ensure_ascii=False) if c == "payload" else r[c]
                            for c in cols])
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
    """Check the audit trail's hash chain; reports the first broken link (exit 1).

    \b
    Example:  starfund audit verify
    """
    with env.engine.connect() as conn:
        checked, broken = audit.verify(conn)
    if env.as_json:
        emit_json({"checked": checked, "ok": broken is None,
                   "broken_at": broken.seq if broken else None,
                   "problem": broken.problem if broken else None})
    elif broken is None:
        click.echo(f"audit chain intact: {checked} events verified")
    else:
        click.echo(f"audit chain BROKEN at event {broken.seq}: {broken.problem} "
                   f"({checked} events verified before it)", err=True)
    if broken is not None:
        sys.exit(1)


# --- notifications and deadlines -----------------------------------------------------

@main.group("notify")
def notify_group() -> None:
    """Notifications: deliver the outbox."""


@notify_group.command("send")
@click.option("--outbox", default="outbox", show_default=True, type=click.Path(file_okay=False),
              help="Folder the .eml files are written to.")
@common
def notify_send(env: Env, outbox: str) -> None:
    """Render and deliver pending notifications (to a folder of .eml files by default).

    \b
    Example:  starfund notify send --outbox mail/
    """
    from notifications.channels import FileChannel
    from notifications.outbox import drain

    r = drain(env.engine, FileChannel(outbox))
    click.echo(f"notifications: {r.sent} sent, {r.retrying} to retry, {r.failed} failed")
    for line in r.errors[:20]:
        click.echo(f"  failed {line}", err=True)


@main.group("deadlines")
def deadlines_group() -> None:
    """Deadlines: dated events of calls."""


@deadlines_group.command("list")
@click.argument("call_id", metavar="CALL", required=False)
@json_option
@common
def deadlines_list(env: Env, call_id: str | None) -> None:
    """List deadlines, of one call or all.

    \b
    Example:  starfund deadlines list 2025-project
    """
    from sqlalchemy import select

    from lifecycle.models import Deadline

    with env.engine.connect() as conn:
        stmt = select(Deadline.__table__).order_by(Deadline.due_at, Deadline.id)
        if call_id:
            stmt = stmt.where(Deadline.call_id == call_id)
        rows = [{"call": d.call_id, "kind": d.kind, "due_at": d.due_at.isoformat(sep=" "),
                 "action": d.action, "fires": d.fires,
                 "fired_at": d.fired_at.isoformat(sep=" ") if d.fired_at else None,
                 "last_error": d.last_error} for d in conn.execute(stmt)]
    if env.as_json:
        return emit_json(rows)
    table("deadlines", ["call", "kind", "due", "action", "fires", "fired"],
          [[r["call"], r["kind"], r["due_at"], r["action"], r["fires"], r["fired_at"] or "pending"]
           for r in rows])


# --- review -----------------------------------------------------------------------------

@main.group("review")
def review_group() -> None:
    """Expert review: assignment and scores."""


@review_group.command("assign")
@click.argument("call_id", metavar="CALL")
@click.option("--per-application", type=click.IntRange(1), help="Experts per application.")
@common
def review_assign(env: Env, call_id: str, per_application: int | None) -> None:
    """Assign experts to every eligible application of CALL, avoiding conflicts.

    \b
    Example:  starfund review assign 2025-project --per-application 5
    """
    from lifecycle import reviewing

    with db.transaction(env.engine) as s:
        r = reviewing.assign_round_robin(s.connection(), call_id, per_application, env.actor)
    click.echo(f"{r['assigned']} assignments made for {r['applications']} applications")


if __name__ == "__main__":
    main()
