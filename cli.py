"""The starfund command line: parse, call the engine, print. No business rules here.

Every command takes --db, --as and --now; every command that prints data
takes --json. An option given on the command line (before or after the
command name) beats its environment variable, which beats the default.

A user's mistake (any `lifecycle.core.errors.UserError`) is one message on stderr
and exit 1; a bad option value is click's usage error, exit 2. Anything else is
a bug and keeps its traceback. Text options are checked for control characters
and length at the door (`lifecycle.core.names`), and everything printed escapes what
a terminal cannot show safely.
"""
from __future__ import annotations

import functools
import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from lifecycle.acts import calls, reports
from lifecycle.core import audit, clock, db, engine
from lifecycle.core.callconfig import ConfigError
from lifecycle.core.errors import BadValue, NotFound, UserError
from lifecycle.core.names import clean_name, printable
from lifecycle.core.tabular import InputError, csv_writer

console = Console(highlight=False, soft_wrap=True,
                  width=None if sys.stdout.isatty() else 160)  # piped: do not squeeze tables
# Typed user mistakes only: a bare ValueError or LookupError is a bug and shows its traceback.
EXPECTED_ERRORS = (UserError, InputError, ConfigError)
ACTOR_LIMIT = 100
TEXT_LIMIT = 200  # ids, names and other short values given on the command line
LONG_TEXT = {"reason": 2000, "contact": 500}  # free text options (still one line)
PATH_LIMIT = 4096
MAX_COUNT = 1_000_000  # --limit and --page: their product stays a 64-bit offset
ROW_ID = click.IntRange(1, 2**31 - 1)  # a numbered row (notification, objection)


class IsoTime(click.ParamType):
    """An ISO 8601 date or date-time, as programme-local time; names the accepted form when wrong."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return clock.parse(value)
        except BadValue as e:
            self.fail(str(e), param, ctx)


ISO_TIME = IsoTime()


class SafePath(click.Path):
    """click.Path that refuses control characters and overlong names before touching the disk
    (a NUL byte would otherwise reach os.stat as a ValueError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                clean_name(value, "the path", PATH_LIMIT, required=False)
            except BadValue as e:
                self.fail(str(e), param, ctx)
        return super().convert(value, param, ctx)


class OutputPath(SafePath):
    """A file (or, with `folder`, a folder) starfund will write: checked before any work is done,
    so a command that would fail to write refuses at the door and changes nothing."""

    def __init__(self, folder: bool = False) -> None:
        super().__init__(file_okay=not folder, dir_okay=folder)
        self.folder = folder

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        value = super().convert(value, param, ctx)
        target = Path(os.fsdecode(value))
        if not self.folder and target.is_dir():
            self.fail(f"{target} is a folder; accepted: a file name to write", param, ctx)
        where = target if self.folder else target.parent
        while not where.exists() and where != where.parent:  # a folder is made with its parents
            if not self.folder:
                self.fail(f"the folder {where} does not exist; accepted: a file in an existing "
                          "folder", param, ctx)
            where = where.parent
        if not where.is_dir():
            self.fail(f"{where} is not a folder", param, ctx)
        if not os.access(where, os.W_OK) or (target.is_file() and not os.access(target, os.W_OK)):
            self.fail(f"cannot write to {target}: permission denied", param, ctx)
        return value


class Env:
    """What every command receives: the database, the actor, and --json."""

    def __init__(self, db_arg: str | None, actor: str, as_json: bool = False) -> None:
        self.db_arg, self.actor, self.as_json = db_arg, actor, as_json
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            path = _sqlite_file(self.db_arg)
            if path and not os.path.exists(path):  # asking must not leave an empty file behind
                raise NotFound(f"no starfund database at {path}: run `starfund init` first")
            self._engine = open_database(self.db_arg)
            db.require_schema(self._engine)
        return self._engine


def _sqlite_file(db_arg: str | None) -> str | None:
    """The file of a SQLite database (None: another backend, in memory, or not a valid URL)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db.resolve_url(db_arg))
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def open_database(db_arg: str | None):
    """An Engine for --db/STARFUND_DB, checked to answer; a bad URL or file is the user's error."""
    from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

    shown = db_arg or os.environ.get("STARFUND_DB") or db.DEFAULT_DB
    try:
        e = db.make_engine(db_arg)
        shown = e.url.render_as_string(hide_password=True) if "://" in shown else shown
    except (ArgumentError, NoSuchModuleError) as err:
        raise BadValue(f"database {shown!r} is neither a SQLite file nor a database URL "
                       f"({err}); accepted: a file path or e.g. "
                       "postgresql://user@host/dbname") from None
    try:
        with e.connect():
            pass
    except DatabaseError as err:
        e.dispose()
        raise NotFound(f"cannot open the database {shown!r}: "
                       f"{str(err.orig).strip().splitlines()[0]}") from None
    return e


def _pick(ctx: click.Context, key: str, option: str, envvar: str) -> tuple[Any, str]:
    """A shared option's value and where it came from: this command's option, the same option
    before the command name, the environment variable, or (None, envvar) for the default."""
    if ctx.params.get(key) is not None:
        return ctx.params[key], option
    root = ctx.find_root().obj or {}
    if root.get(key) is not None:
        return root[key], option
    return os.environ.get(envvar) or None, envvar


def _check_text(ctx: click.Context) -> None:
    """Refuse control characters and overlong values in every text option and argument."""
    for p in ctx.command.params:
        if p.name in SHARED or p.name is None:
            continue
        value = ctx.params.get(p.name)
        for v in value if isinstance(value, tuple) else (value,):
            if not isinstance(v, str):
                continue
            limit = PATH_LIMIT if isinstance(p.type, click.Path) else LONG_TEXT.get(p.name, TEXT_LIMIT)
            try:
                clean_name(v, "the value", limit, required=False)
            except BadValue as e:
                raise click.BadParameter(str(e), ctx, p) from None


SHARED = ("db_arg", "as_actor", "at_now")


def shared_settings(ctx: click.Context) -> tuple[str | None, str]:
    """Resolve --db, --as and --now (option > environment > default), checked; freezes the clock."""
    db_arg, db_from = _pick(ctx, "db_arg", "--db", "STARFUND_DB")
    actor, actor_from = _pick(ctx, "as_actor", "--as", "STARFUND_ACTOR")
    now, now_from = _pick(ctx, "at_now", "--now", "STARFUND_NOW")
    if actor is None:
        try:
            actor, actor_from = getpass.getuser(), "the OS user name (set --as)"
        except (OSError, KeyError):
            raise click.BadParameter("who acts is unknown (no OS user name); accepted: --as NAME "
                                     "or STARFUND_ACTOR=NAME", ctx, param_hint="'--as'") from None
    for value, what, source, limit in ((db_arg, "the database", db_from, PATH_LIMIT),
                                       (actor, "the actor name", actor_from, ACTOR_LIMIT)):
        try:
            if value is not None:
                clean_name(value, what, limit)
        except BadValue as e:
            raise click.BadParameter(str(e), ctx, param_hint=f"'{source}'") from None
    actor = actor.strip()
    try:
        clock.zone()
    except BadValue as e:
        raise click.BadParameter(str(e), ctx, param_hint="'STARFUND_TZ'") from None
    if now is not None:
        if now_from == "--now":
            clock.set_now(now)
        else:
            try:
                clock.parse(now)
            except BadValue as e:
                raise click.BadParameter(str(e), ctx, param_hint="'STARFUND_NOW'") from None
    return db_arg, actor


def common(fn: Callable) -> Callable:
    """--db, --as and --now on every command (they may also be given before the command)."""

    @click.option("--db", "db_arg", metavar="URL|FILE",
                  help="Database: a SQLite file or any SQLAlchemy URL [env STARFUND_DB; "
                       "default starfund.db].")
    @click.option("--as", "as_actor", metavar="ACTOR",
                  help="Who acts, for the audit trail [env STARFUND_ACTOR; default: OS user].")
    @click.option("--now", "at_now", type=ISO_TIME,
                  help="Pretend it is this time (simulation, back-dated entry) [env STARFUND_NOW].")
    @functools.wraps(fn)
    def wrapper(*args: Any, db_arg: str | None, as_actor: str | None, at_now: datetime | None,
                **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        _check_text(ctx)
        db_value, actor = shared_settings(ctx)
        env = Env(db_value, actor, kwargs.pop("as_json", False))
        try:
            return fn(env, *args, **kwargs)
        except EXPECTED_ERRORS as e:
            echo(f"error: {e}", err=True)
            sys.exit(1)
    return wrapper


def echo(text: Any = "", err: bool = False) -> None:
    """click.echo, with control characters from the data escaped (newlines and tabs kept)."""
    click.echo(printable(text, multiline=True), err=err)


_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e"
                             "\u2066-\u2069]")


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def emit_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)  # escapes C0 itself
    click.echo(_UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=rich_escape(printable(title)), title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else rich_escape(printable(v)) for v in r])
    console.print(t)


def csv_cell(value: Any) -> Any:
    """A CSV cell: control characters escaped when the CSV goes to a terminal, kept in a file."""
    return printable(value) if isinstance(value, str) and sys.stdout.isatty() else value


def known(conn, call_id: str | None = None, application_id: str | None = None,
          society_id: str | None = None) -> None:
    """Refuse a filter naming a call, application or society that does not exist."""
    from sqlalchemy import select

    from lifecycle.core.models import Application, Society

    if call_id is not None:
        engine.load_call(conn, call_id)
    if application_id is not None and conn.execute(
            select(Application.id).where(Application.id == application_id)).first() is None:
        raise NotFound(f"no application {application_id!r}")
    if society_id is not None and conn.execute(
            select(Society.id).where(Society.id == society_id)).first() is None:
        raise NotFound(f"no society {society_id!r}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_arg", metavar="URL|FILE",
              help="Database (see init) [env STARFUND_DB; default starfund.db].")
@click.option("--as", "as_actor", metavar="ACTOR",
              help="Who acts (see any command) [env STARFUND_ACTOR; default: OS user].")
@click.option("--now", "at_now", type=ISO_TIME,
              help="Pretend it is this time [env STARFUND_NOW].")
@click.version_option("0.1.0", prog_name="starfund")
@click.pass_context
def main(ctx: click.Context, db_arg: str | None, as_actor: str | None,
         at_now: datetime | None) -> None:
    """starfund: run a public funding programme from call to outcome.

    \b
    Start with:  starfund demo          (a whole simulated programme year)
    Then:        starfund status 2025-project
                 starfund audit query --call 2025-project
    """
    ctx.obj = {"db_arg": db_arg, "as_actor": as_actor, "at_now": at_now}


# --- setup --------------------------------------------------------------------

@main.command()
@common
def init(env: Env) -> None:
    """Create the database, or upgrade an existing one to the newest schema.

    \b
    Example:  starfund init --db programme.db
              starfund init --db postgresql://postgres@127.0.0.1/starfund
    """
    e = open_database(env.db_arg)
    done = db.upgrade(e)
    echo(f"database {done}: {e.url.render_as_string()}")


@main.command()
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 10),
              help="Programme years to run in a row.")
@click.option("--seed", default=2025, show_default=True, help="Random seed of the simulation.")
@click.option("--outbox", default="outbox", show_default=True, type=OutputPath(folder=True),
              help="Folder the notifications are delivered to.")
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start the demo's own database over (--keep: use it only if it holds no "
                   "simulation yet).")
@click.option("--societies", default=60, show_default=True, type=click.IntRange(20, 80),
              help="Societies in the simulation (each year ~2.5 declarations per society).")
@common
def demo(env: Env, years: int, seed: int, outbox: str, fresh: bool, societies: int) -> None:
    """Simulate a whole programme year (or several) on a new database, printing each step.

    The demo writes only to a database it made: a new SQLite file (default
    starfund-demo.db), an empty database, or one an earlier demo made and
    marked. Pointed at any other database it refuses and changes nothing.

    \b
    Example:  starfund demo
              starfund demo --years 3 --db demo.db
    """
    from lifecycle.demo import run as demo_mod

    demo_mod.run(env.db_arg or demo_mod.DEFAULT_DB, years=years, seed=seed, outbox=outbox,
                 fresh=fresh, actor=env.actor, out=console, societies=societies)


# --- calls and imports --------------------------------------------------------------

@main.group("call")
def call_group() -> None:
    """Create and list calls (funding rounds)."""


@call_group.command("create")
@click.argument("file", type=SafePath(dir_okay=False))
@common
def call_create(env: Env, file: str) -> None:
    """Create a call from a TOML file (see examples/call.toml).

    \b
    Example:  starfund call create examples/call.toml
    """
    with db.transaction(env.engine) as s:
        config = calls.create_from_file(s.connection(), file, env.actor)
    echo(f"call {config.id} created: {config.title} ({config.workflow}, "
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


def encoding_option(fn: Callable) -> Callable:
    """--encoding on every import: a CSV's text encoding when detection is not enough."""
    return click.option("--encoding", metavar="NAME", envvar="STARFUND_ENCODING", default=None,
                        help="Text encoding of a CSV file [env STARFUND_ENCODING; default: "
                             "detected, UTF-8 with or without BOM, or GB18030/GBK].")(fn)


def _import(env: Env, fn: Callable, *args: Any, encoding: str | None = None) -> dict:
    with db.transaction(env.engine) as s:
        return fn(s.connection(), *args, env.actor, encoding=encoding)


@main.group("society")
def society_group() -> None:
    """Societies (学会): import them."""


@society_group.command("import")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def society_import(env: Env, file: str, encoding: str | None) -> None:
    """Import societies from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    annual_inspection_passed, penalty.

    \b
    Example:  starfund society import societies.xlsx
    """
    from lifecycle.acts import registry

    r = _import(env, registry.import_societies, file, encoding=encoding)
    echo(f"societies: {r['created']} created, {r['updated']} updated")


@society_group.command("show")
@click.argument("society_id", metavar="ID")
@json_option
@common
def society_show(env: Env, society_id: str) -> None:
    """One society: standing, current star, star history and every application it ever made.

    \b
    Example:  starfund society show S012
    """
    from lifecycle.acts import stars

    with env.engine.connect() as conn:
        d = stars.society_profile(conn, society_id)
    if env.as_json:
        return emit_json(d)
    s, cur = d["society"], d["current_star"]
    echo(f"{s['id']}  {s['name']}  {s['name_en']}  ({s['institution']})")
    echo(f"  annual inspection {'passed' if s['annual_inspection_passed'] else 'FAILED'}"
               f"  penalty {'YES' if s['penalty'] else 'no'}")
    echo("  current star: " + (f"{cur['stars']} ({cur['level']}) from {cur['call']}, "
                                     f"valid until {cur['valid_until'][:10]}" if cur else "none"))
    if d["barred_from_next_project_call"]:
        echo(f"  barred from the next project call: {d['barred_from_next_project_call']}")
    if d["star_history"]:
        table("star history", ["call", "stars", "total", "change", "reward", "awarded",
                               "valid until", "status", "why it ended"],
              [[h["call"], h["stars"], h["total"], h["change"], f"{h['reward']:,}",
                h["awarded_at"][:10], h["valid_until"][:10], h["status"],
                (f"{h['end_kind']}: {h['end_reason']}" if h["end_reason"] else "")]
               for h in d["star_history"]])
    table("applications", ["id", "call", "category", "state", "granted", "grade / stars",
                           "decision"],
          [[a["id"], a["call"], a["category"], a["state"], f"{a['granted'] or 0:,}",
            a["grade"] or ("★" * a["star_level"] if a["star_level"] else ""),
            (a["decision"] or "")[:70]] for a in d["applications"]])


@main.group("expert")
def expert_group() -> None:
    """Experts (专家): import them."""


@expert_group.command("import")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def expert_import(env: Env, file: str, encoding: str | None) -> None:
    """Import experts from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    disciplines, societies, conflict_societies, conflict_institutions
    (lists separated by ';').

    \b
    Example:  starfund expert import experts.csv
    """
    from lifecycle.acts import registry

    r = _import(env, registry.import_experts, file, encoding=encoding)
    echo(f"experts: {r['created']} created, {r['updated']} updated")


@main.group("application")
def application_group() -> None:
    """Applications (申报项目): import declarations."""


@application_group.command("import")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def application_import(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import declarations into CALL as drafts (all or nothing).

    Columns: society_id, category, title, requested_amount; optional id,
    title_en, discipline, summary, excluded_experts.

    \b
    Example:  starfund application import 2025-project declarations.xlsx
    """
    from lifecycle.acts import declarations

    r = _import(env, declarations.import_applications, call_id, file, encoding=encoding)
    echo(f"applications: {r['created']} drafts created in {call_id}")


# --- moving applications ------------------------------------------------------------

def print_report(report: engine.Report) -> None:
    verb = "would move" if report.dry_run else "moved"
    echo(f"{report.call_id} {report.trigger}: {verb} {report.moved_total}, "
               f"skipped {report.skipped_total}" + (" (dry run: nothing written)"
                                                     if report.dry_run else ""))
    for (src, dst), n in sorted(report.moved.items()):
        echo(f"  {n} {src} -> {dst}")
    for reason, n in report.skipped.most_common():
        echo(f"  {n} skipped: {reason}")


def show_report(env: Env, report: engine.Report) -> None:
    """An advance's report, as JSON or as lines of counts and reasons."""
    if env.as_json:
        emit_json(report.as_dict())
    else:
        print_report(report)


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
    show_report(env, report)


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
    echo(f"requested {s['requested']:,}  granted {s['granted']:,}  budget {s['budget']:,}")
    if s.get("money"):
        m = s["money"]
        echo(f"paid {m['paid']:,}  due {m['due']:,}  planned {m['planned']:,}  "
                   f"withheld {m['withheld']:,}  to recover {m['to_recover']:,}")
    echo(f"possible triggers now: {', '.join(s['possible_triggers']) or 'none'}")
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
    echo(f"{a['id']}  {a['title']}  [{a['state']}] v{a['version']}")
    echo(f"  society {a['society_id']}  category {a['category']}  "
               f"requested {a['requested_amount']:,}  granted {a['granted_amount'] or 0:,}  "
               f"score {a['score'] if a['score'] is not None else '-'}  rank {a['rank'] or '-'}")
    if a["decision_reason"]:
        echo(f"  decision: {a['decision_reason']}")
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


# --- performance assessment, outcomes, payments -------------------------------------

@main.group("assessment")
def assessment_group() -> None:
    """Performance assessment (绩效考核): reports, grades, proposed outcomes."""


@assessment_group.command("report")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--file", "file", required=True, type=SafePath(dir_okay=False),
              help="The society's report (any file; stored with its SHA-256).")
@json_option
@common
def assessment_report(env: Env, app_id: str, file: str) -> None:
    """Record a society's performance report for its current checkpoint.

    \b
    Example:  starfund assessment report 2025-project-00001 --file midterm-00001.pdf
    """
    from lifecycle.acts import assessing

    with db.transaction(env.engine) as s:
        r = assessing.record_report(s.connection(), app_id, file, env.actor)
    if env.as_json:
        return emit_json(r)
    echo(f"report recorded for {r['application']} ({r['checkpoint']}): {r['file']}, "
               f"{r['bytes']:,} bytes" + (f" - LATE (due {r['due']})" if r["late"] else ""))


@assessment_group.command("grades")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def assessment_grades(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import assessment grades of CALL's current checkpoint (all or nothing).

    Columns: application_id, score; optional grader (several graders of one
    application are averaged), comment. The grade follows from the call's scale.

    \b
    Example:  starfund assessment grades 2025-project grades-midterm.xlsx
    """
    from lifecycle.acts import assessing

    r = _import(env, assessing.import_grades, call_id, file, encoding=encoding)
    per = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("graded", "rows"))
    echo(f"grades: {r['graded']} applications graded from {r['rows']} rows ({per})")


@assessment_group.command("outcomes")
@click.argument("call_id", metavar="CALL")
@json_option
@common
def assessment_outcomes(env: Env, call_id: str) -> None:
    """The outcome each assessed application's grade proposes (confirm: advance decide_outcome).

    \b
    Example:  starfund assessment outcomes 2025-project
    """
    from lifecycle.acts import assessing

    with env.engine.connect() as conn:
        rows = assessing.proposals(conn, call_id)
    if env.as_json:
        return emit_json(rows)
    table(f"{call_id}: proposed outcomes (confirm all: starfund advance {call_id} "
          "decide_outcome; one otherwise: starfund outcome override)",
          ["application", "society", "checkpoint", "score", "grade", "proposed", "granted"],
          [[r["application"], r["society"], r["checkpoint"], r["score"], r["grade"],
            r["proposed"], f"{r['granted'] or 0:,}"] for r in rows])


@main.group("outcome")
def outcome_group() -> None:
    """Dynamic management (动态管理): override one application's outcome."""


@outcome_group.command("override")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--to", "outcome", required=True,
              type=click.Choice(["continue", "adjust", "terminate"]), help="The outcome.")
@click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
@click.option("--cut", type=click.FloatRange(0, 100, min_open=True, max_open=True),
              help="With --to adjust: percent cut of the remaining grant (default: the grade's).")
@json_option
@common
def outcome_override(env: Env, app_id: str, outcome: str, reason: str,
                     cut: float | None) -> None:
    """Decide one assessed application otherwise than its grade proposes, with a reason.

    \b
    Example:  starfund outcome override 2025-project-00007 --to continue \\
                --reason "report delayed by the venue closure; leadership group decision 2025-12-20"
    """
    from lifecycle.acts import assessing

    report = assessing.override(env.engine, app_id, outcome, reason, env.actor, cut)
    show_report(env, report)


@main.group("payments")
def payments_group() -> None:
    """Grant and reward instalments: list them, record payments."""


@payments_group.command("pay")
@click.argument("call_id", metavar="CALL")
@click.option("--only", multiple=True, metavar="ID", help="Only these applications (repeatable).")
@common
def payments_pay(env: Env, call_id: str, only: tuple[str, ...]) -> None:
    """Record as paid every released instalment of CALL whose date has come.

    \b
    Example:  starfund payments pay 2025-project
    """
    from lifecycle.acts import payments

    with db.transaction(env.engine) as s:
        r = payments.pay(s.connection(), call_id, env.actor, list(only) or None)
    echo(f"paid {r['instalments']} instalments to {r['applications']} applications: "
               f"{r['amount']:,} yuan")


@payments_group.command("list")
@click.argument("call_id", metavar="CALL")
@json_option
@common
def payments_list(env: Env, call_id: str) -> None:
    """Money of CALL: planned, due, paid, withheld and to recover, per state of instalment.

    \b
    Example:  starfund payments list 2025-project --json
    """
    from lifecycle.acts import payments

    with env.engine.connect() as conn:
        engine.load_call(conn, call_id)
        m = payments.money(conn, call_id)
    if env.as_json:
        return emit_json(m)
    table(f"{call_id}: money (yuan)", ["planned", "due", "paid", "withheld", "to recover"],
          [[f"{m[k]:,}" for k in ("planned", "due", "paid", "withheld", "to_recover")]])


# --- star-rated societies (以奖代补) --------------------------------------------------

@main.command("stars")
@click.argument("call_id", metavar="[CALL]", required=False)
@json_option
@common
def stars_table(env: Env, call_id: str | None) -> None:
    """The star table of a star CALL (with each star's status now), or every star valid now.

    \b
    Example:  starfund stars 2025-star
              starfund stars --json
    """
    from lifecycle.acts import stars

    with env.engine.connect() as conn:
        known(conn, call_id)
        rows = stars.star_table(conn, call_id)
    if env.as_json:
        return emit_json(rows)
    table(f"stars of {call_id}" if call_id else "stars valid now",
          ["society", "name", "stars", "total", "change", "reward", "valid until", "status",
           "note"],
          [[r["society"], r["name"], r["stars"], r["total"],
            r["change"] + (f" (was {r['previous_level']})" if r["previous_level"] else ""),
            f"{r['reward']:,}", r["valid_until"][:10], r["status"], r["end_reason"]]
           for r in rows])


@main.group("star")
def star_group() -> None:
    """Star rating acts: the indicator sheet, score imports, revocation."""


@star_group.command("sheet")
@click.argument("call_id", metavar="CALL")
@click.option("--csv", "as_csv", is_flag=True,
              help="Write a self-evaluation template (society_id, indicator, self_score ...).")
@json_option
@common
def star_sheet(env: Env, call_id: str, as_csv: bool) -> None:
    """The indicator sheet of a star CALL: indicators under the four capacities, with maxima.

    \b
    Example:  starfund star sheet 2025-star --csv > self-evaluation.csv
    """
    from lifecycle.acts import stars

    with env.engine.connect() as conn:
        rows = stars.sheet(stars._star_call(conn, call_id))
    if as_csv:
        w = csv_writer(sys.stdout)
        w.writerow(["society_id", "capacity", "indicator", "name", "max", "self_score",
                    "evidence"])
        for r in rows:
            w.writerow(["", *map(csv_cell, (r["capacity"], r["indicator"], r["name"])), r["max"],
                        "", ""])
        return
    if env.as_json:
        return emit_json(rows)
    table(f"{call_id}: indicator sheet ({sum(r['max'] for r in rows):g} points)",
          ["capacity", "indicator", "name", "max"],
          [[r["capacity_name"], r["indicator"], f"{r['name']} {r['name_en']}", f"{r['max']:g}"]
           for r in rows])


@star_group.command("declare")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_declare(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import societies' self-evaluations into star CALL as declarations (all or nothing).

    Columns: society_id, indicator, self_score; optional name, capacity, max,
    evidence. Every society must score every indicator of the sheet, within its maximum.

    \b
    Example:  starfund star declare 2025-star examples/star-self-evaluation.csv
    """
    from lifecycle.acts import stars

    r = _import(env, stars.import_self_evaluation, call_id, file, encoding=encoding)
    echo(f"star declarations: {r['declarations']} drafts created ({r['scores']} scores)")


@star_group.command("check")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_check(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import the association's checked score per indicator (all or nothing).

    Columns: society_id, indicator, checked_score; optional note.

    \b
    Example:  starfund star check 2025-star checked.csv
    """
    from lifecycle.acts import stars

    r = _import(env, stars.import_checked, call_id, file, encoding=encoding)
    echo(f"checked scores: {r['scores']} recorded for {r['declarations']} declarations")


@star_group.command("review")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_review(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import experts' scores per indicator (all or nothing; 回避 enforced).

    Columns: expert_id, society_id, indicator, score; optional note. Each
    expert scores every indicator of each society it reviews.

    \b
    Example:  starfund star review 2025-star expert-scores.xlsx
    """
    from lifecycle.acts import stars

    r = _import(env, stars.import_reviews, call_id, file, encoding=encoding)
    echo(f"expert reviews: {r['sheets']} sheets for {r['declarations']} declarations")


@star_group.command("revoke")
@click.argument("society_id", metavar="SOCIETY")
@click.option("--kind", required=True, type=click.Choice(["inspection", "penalty", "other"]),
              help="Why in one word: failed annual inspection, penalty, or other.")
@click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
@json_option
@common
def star_revoke(env: Env, society_id: str, kind: str, reason: str) -> None:
    """Revoke a society's current star (an audited transition of its star declaration).

    For every society that failed its inspection or is penalised at once:
    `starfund advance STAR-CALL review_standing`.

    \b
    Example:  starfund star revoke S012 --kind penalty --reason "2025-11 penalty by the civil affairs bureau"
    """
    from lifecycle.acts import stars

    report = stars.revoke(env.engine, society_id, kind, reason, env.actor)
    show_report(env, report)


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
    from lifecycle.core.machine import UnknownWorkflow, for_workflow

    try:
        wm = for_workflow(name)
    except UnknownWorkflow as e:
        raise click.ClickException(str(e)) from None
    echo(wm.mermaid() if fmt == "mermaid" else wm.text())


# --- audit ---------------------------------------------------------------------------

@main.group("audit")
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


# --- notifications and deadlines -----------------------------------------------------

def channel_options(fn: Callable) -> Callable:
    """The delivery channel: a folder of .eml files (default) or SMTP; the password only from env."""
    options = [
        click.option("--channel", type=click.Choice(["file", "smtp"]), default="file",
                     envvar="STARFUND_CHANNEL", show_default=True,
                     help="Deliver to a folder of .eml files or through SMTP [env STARFUND_CHANNEL]."),
        click.option("--outbox", default="outbox", envvar="STARFUND_OUTBOX", show_default=True,
                     type=OutputPath(folder=True),
                     help="Folder for the file channel [env STARFUND_OUTBOX]."),
        click.option("--smtp-host", envvar="STARFUND_SMTP_HOST", help="SMTP server [env STARFUND_SMTP_HOST]."),
        click.option("--smtp-port", type=click.IntRange(1, 65535), default=25, envvar="STARFUND_SMTP_PORT",
                     show_default=True, help="SMTP port [env STARFUND_SMTP_PORT]."),
        click.option("--smtp-starttls/--no-smtp-starttls", default=False,
                     envvar="STARFUND_SMTP_STARTTLS", help="Use STARTTLS [env STARFUND_SMTP_STARTTLS]."),
        click.option("--smtp-user", envvar="STARFUND_SMTP_USER",
                     help="SMTP login; the password is read only from STARFUND_SMTP_PASSWORD."),
        click.option("--smtp-timeout", type=click.FloatRange(0, min_open=True), default=10.0,
                     envvar="STARFUND_SMTP_TIMEOUT", show_default=True,
                     help="Seconds to wait for the SMTP server; one timeout ends the round "
                          "[env STARFUND_SMTP_TIMEOUT]."),
        click.option("--max-attempts", type=click.IntRange(1), default=5, show_default=True,
                     help="Attempts before a message is marked failed."),
        click.option("--backoff", "backoff_seconds", type=click.FloatRange(0), default=60,
                     show_default=True, help="Seconds before the first retry; doubles each time."),
        click.option("--templates", "templates_dir", envvar="STARFUND_TEMPLATES",
                     type=SafePath(file_okay=False),
                     help="Folder overriding templates (<lang>/<kind>.txt) [env STARFUND_TEMPLATES]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _channel_factory(kw: dict[str, Any]) -> Callable[[], Any]:
    from notifications import channels

    settings = dict(kind=kw["channel"], outbox=kw["outbox"], host=kw["smtp_host"],
                    port=kw["smtp_port"], starttls=kw["smtp_starttls"], user=kw["smtp_user"],
                    timeout=kw["smtp_timeout"])
    try:
        channels.make(**settings)  # fail now, clearly, on bad settings (BadValue)
    except OSError as e:  # the outbox folder cannot be made
        raise BadValue(f"--outbox {kw['outbox']}: {e.strerror or e}") from None
    return lambda: channels.make(**settings)


@main.group("notify")
def notify_group() -> None:
    """Notifications: deliver the outbox, list and re-queue messages."""


@notify_group.command("send")
@channel_options
@json_option
@common
def notify_send(env: Env, **kw: Any) -> None:
    """Render and deliver pending notifications once (to a folder of .eml files by default).

    Failures are retried with exponential backoff by later runs (and by
    `starfund scheduler run`, which delivers continuously); after
    --max-attempts a message is failed: see `notify list --failed`.

    \b
    Example:  starfund notify send --outbox mail/
              STARFUND_SMTP_PASSWORD=... starfund notify send --channel smtp \\
                  --smtp-host mail.example.org --smtp-port 587 --smtp-starttls --smtp-user kexie
    """
    from notifications.outbox import drain

    channel = _channel_factory(kw)()
    r = drain(env.engine, channel, max_attempts=kw["max_attempts"],
              backoff_seconds=kw["backoff_seconds"], actor=env.actor,
              templates=kw["templates_dir"])
    if env.as_json:
        return emit_json(r.as_dict())
    echo(f"notifications via {channel!r}: {r.sent} sent, {r.retrying} to retry, "
               f"{r.failed} failed" + (f", {r.resolved} settled after an interrupted send"
                                       if r.resolved else ""))
    for line in r.errors[:20]:
        echo(f"  failed {line}", err=True)


@notify_group.command("list")
@click.option("--failed", is_flag=True, help="Only messages that failed for good.")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed"]),
              help="Only messages with this status.")
@click.option("--in-doubt", is_flag=True,
              help="Only messages whose sender stopped between sending and recording.")
@click.option("--call", "call_id", help="Only this call.")
@click.option("--application", "application_id", help="Only this application.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(0, MAX_COUNT),
              help="At most this many (0: all).")
@json_option
@common
def notify_list(env: Env, failed: bool, status: str | None, in_doubt: bool, call_id: str | None,
                application_id: str | None, limit: int) -> None:
    """List notifications with their status, attempts and last error.

    \b
    Example:  starfund notify list --failed
              starfund notify list --application 2025-project-00012 --json
    """
    from notifications import outbox

    with env.engine.connect() as conn:
        known(conn, call_id, application_id)
        rows = outbox.listing(conn, "failed" if failed else status, call_id, application_id,
                              in_doubt, limit or None)
        totals = outbox.counts(conn)
    if env.as_json:
        return emit_json(rows)
    table("notifications", ["id", "kind", "to", "lang", "status", "attempts", "sent / next try",
                            "last error"],
          [[r["id"], r["kind"], r["to"], r["language"], r["status"], r["attempts"],
            r["sent_at"] or r["next_attempt_at"], r["last_error"][:60]] for r in rows])
    echo("totals: " + (", ".join(f"{n} {s}" for s, n in sorted(totals.items())) or "none"))


@notify_group.command("retry")
@click.option("--id", "ids", multiple=True, type=ROW_ID, metavar="N",
              help="Only these notifications (repeatable); default: all failed.")
@click.option("--in-doubt", is_flag=True,
              help="Re-queue messages stuck in 'sending' after a crash (you checked they did not go "
                   "out; they keep their Message-ID).")
@common
def notify_retry(env: Env, ids: tuple[int, ...], in_doubt: bool) -> None:
    """Put failed notifications back in the queue with fresh attempts (audited).

    \b
    Example:  starfund notify retry
              starfund notify retry --id 17 --id 18
    """
    from notifications import outbox

    with db.transaction(env.engine) as s:
        n = outbox.requeue(s.connection(), env.actor, list(ids) or None, in_doubt)
    echo(f"{n} notification(s) re-queued; deliver them with `starfund notify send`")


@main.group("templates")
def templates_group() -> None:
    """Message templates: check them, preview one against real data."""


@templates_group.command("check")
@click.option("--templates", "templates_dir", envvar="STARFUND_TEMPLATES",
              type=SafePath(file_okay=False),
              help="Override folder to check with the built-in templates [env STARFUND_TEMPLATES].")
@json_option
@common
def templates_check(env: Env, templates_dir: str | None) -> None:
    """Validate every template: syntax, blocks, placeholders against each kind's context.

    Exits 1 when any template has an error (warnings alone pass).

    \b
    Example:  starfund templates check --templates /etc/starfund/templates
    """
    from notifications import render

    r = render.check(templates_dir)
    if env.as_json:
        emit_json({"checked": len(r.checked), "ok": not r.errors,
                   "problems": [p.__dict__ for p in r.problems]})
    else:
        for p in r.problems:
            echo(str(p), err=p.severity == "error")
        echo(f"{len(r.checked)} templates checked: {len(r.errors)} error(s), "
                   f"{len(r.problems) - len(r.errors)} warning(s)")
    if r.errors:
        sys.exit(1)


@templates_group.command("preview")
@click.argument("kind")
@click.option("--application", "app_id", required=True, metavar="ID",
              help="Render against this application's real data.")
@click.option("--expert", "expert_id", metavar="ID", help="For messages to experts: which one.")
@click.option("--language", type=click.Choice(["zh", "en"]),
              help="Language (default: the recipient's).")
@click.option("--html", "show_html", is_flag=True, help="Also print the HTML part.")
@click.option("--templates", "templates_dir", envvar="STARFUND_TEMPLATES",
              type=SafePath(file_okay=False), help="Override folder [env STARFUND_TEMPLATES].")
@json_option
@common
def templates_preview(env: Env, kind: str, app_id: str, expert_id: str | None,
                      language: str | None, show_html: bool, templates_dir: str | None) -> None:
    """Render message KIND for a real application, exactly as it would be sent.

    \b
    Example:  starfund templates preview awarded --application 2025-project-00001
              starfund templates preview remind_review --application 2025-project-00003 --language en
    """
    from notifications import contexts, render

    with env.engine.connect() as conn:
        ctx, recipient, lang = contexts.preview(conn, kind, app_id, expert_id)
    lang = language or lang
    try:
        out = render.render(kind, lang, ctx, templates_dir)
    except Exception as e:  # noqa: BLE001 - a template error is the answer here
        raise BadValue(f"template {lang}/{kind} does not render: {type(e).__name__}: {e}") from e
    if env.as_json:
        return emit_json({"kind": kind, "language": lang, "to": recipient,
                          "subject": out.subject, "body": out.body, "html": out.html,
                          "context": ctx})
    echo(f"To: {recipient}\nLanguage: {lang}\nSubject: {out.subject}\n\n{out.body}")
    if show_html and out.html:
        echo(f"--- html ---\n{out.html}")


@main.group("deadlines")
def deadlines_group() -> None:
    """Deadlines: dated events of calls, fired by `deadlines run-due` or `scheduler run`."""


@deadlines_group.command("list")
@click.argument("call_id", metavar="[CALL]", required=False)
@click.option("--pending", is_flag=True, help="Only deadlines not fired yet.")
@json_option
@common
def deadlines_list(env: Env, call_id: str | None, pending: bool) -> None:
    """List deadlines (of one call or all): due time, what they fire, when they fired, errors.

    \b
    Example:  starfund deadlines list 2025-project
              starfund deadlines list --pending --json
    """
    from lifecycle.scheduling import scheduler

    with env.engine.connect() as conn:
        known(conn, call_id)
        rows = scheduler.listing(conn, call_id, pending)
    if env.as_json:
        return emit_json(rows)
    table("deadlines", ["call", "kind", "due", "action", "fires", "fired", "tries", "note / error"],
          [[r["call"], r["kind"], r["due_at"], r["action"], r["fires"], r["fired_at"] or "pending",
            r["attempts"], (r["note"] or (f"retry after {r['retry_at']}: {r['last_error']}"
                                          if r["last_error"] else ""))[:70]] for r in rows])


@deadlines_group.command("run-due")
@json_option
@common
def deadlines_run_due(env: Env) -> None:
    """Fire every deadline due now (or at --now), once each, in due order; then exit.

    For cron, and for time travel: `--now` says what time it is. Closing
    deadlines advance their call as the actor `scheduler`; reminder deadlines
    queue reminders (deliver them with `notify send`). A failing deadline is
    reported, retried by a later run, and never marked fired. Exits 1 if any failed.

    \b
    Example:  starfund deadlines run-due
              starfund deadlines run-due --now 2025-04-07T17:00
    """
    from lifecycle.scheduling import scheduler

    firings = scheduler.run_due(env.engine, clock.now())
    if env.as_json:
        emit_json([f.as_dict() for f in firings])
    else:
        for f in firings:
            echo(f.line())
        echo(f"{sum(f.outcome == 'fired' for f in firings)} fired, "
                   f"{sum(f.outcome == 'skipped' for f in firings)} skipped, "
                   f"{sum(f.outcome == 'failed' for f in firings)} failed (now {clock.now()})")
    if any(f.outcome == "failed" for f in firings):
        sys.exit(1)


@main.group("scheduler")
def scheduler_group() -> None:
    """The long-running scheduler: fires deadlines on time and delivers the outbox."""


@scheduler_group.command("run")
@click.option("--sync-every", type=click.FloatRange(0.1), default=30, show_default=True,
              help="Seconds between passes that pick up new deadlines (and fire anything due).")
@click.option("--drain-every", type=click.FloatRange(0.1), default=5, show_default=True,
              help="Seconds between outbox deliveries.")
@channel_options
@common
def scheduler_run(env: Env, sync_every: float, drain_every: float, **kw: Any) -> None:
    """Run APScheduler until SIGINT/SIGTERM: catch up, fire each deadline on time, deliver mail.

    At start it fires every deadline missed while it was down (in due order) and
    rebuilds its jobs from the deadline rows (job store: the `apscheduler_jobs`
    table of the same database). Several workers may run against one database:
    each deadline and each message is still handled exactly once. Logs go to stderr.
    --backoff is the first retry delay of a failed delivery and of a failed
    deadline firing (doubling each time). SIGINT/SIGTERM stop it within seconds
    and it exits 0: the firing or mail batch in hand finishes (committed, or
    recorded as failed), nothing is left claimed, and no new work starts.

    \b
    Example:  starfund scheduler run --db postgresql://starfund@db/starfund
              starfund scheduler run --channel smtp --smtp-host mail.example.org
    """
    import logging

    from lifecycle.scheduling import scheduler

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    runner = scheduler.Runner(env.engine, _channel_factory(kw), sync_every=sync_every,
                              drain_every=drain_every, actor=scheduler.SCHEDULER_ACTOR,
                              max_attempts=kw["max_attempts"], templates=kw["templates_dir"],
                              backoff=kw["backoff_seconds"])
    scheduler.serve(runner)


# --- review -----------------------------------------------------------------------------

@main.group("review")
def review_group() -> None:
    """Expert review: assignment, recusal and reassignment, score sheets, panel decisions."""


@review_group.command("assign")
@click.argument("call_id", metavar="CALL")
@click.option("--per-application", type=click.IntRange(1),
              help="Experts per application [default: the call's review.per_application].")
@click.option("--max-load", type=click.IntRange(1),
              help="Most applications per expert [default: the call's review.max_load, else "
                   "the smallest limit that works].")
@click.option("--seed", default=0, show_default=True, help="Tie-break seed: one seed, one result.")
@click.option("--dry-run", is_flag=True, help="Show what would be assigned; write nothing.")
@json_option
@common
def review_assign(env: Env, call_id: str, per_application: int | None, max_load: int | None,
                  seed: int, dry_run: bool) -> None:
    """Assign experts to every application of CALL in review, avoiding conflicts of interest.

    No expert gets an application of a society it belongs to, of its own
    institution, one it declared a conflict with, or one whose applicant
    excluded it; disciplines are matched where possible and loads balanced.
    If the pool cannot satisfy this, the short applications are named and
    nothing is assigned.

    \b
    Example:  starfund review assign 2025-project --per-application 5 --max-load 12 --seed 7
    """
    from lifecycle.acts import reviewing

    with db.transaction(env.engine) as s:
        r = reviewing.assign(s.connection(), call_id, env.actor, per_application=per_application,
                             max_load=max_load, seed=seed, dry_run=dry_run)
    if env.as_json:
        return emit_json(r)
    verb = "would make" if dry_run else "made"
    echo(f"{call_id}: {verb} {r['assigned']} assignments for {r['applications']} "
               f"applications ({r['per_application']} each, seed {r['seed']})")
    echo(f"  expert load {r['load_min']}..{r['load_max']} (limit {r['max_load']}); "
               f"discipline matched {r['discipline_matched']} of {r['assigned']}")
    if dry_run:
        table("planned assignments", ["application", "expert", "discipline match"],
              [[p["application"], p["expert"], "yes" if p["discipline_match"] else ""]
               for p in r["pairs"][:200]])


@review_group.command("reassign")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--from", "from_expert", required=True, metavar="EXPERT",
              help="The expert whose slot is given away (assigned, recused or taken off).")
@click.option("--to", "to_expert", required=True, metavar="EXPERT", help="The new expert.")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@click.option("--max-load", type=click.IntRange(1), help="Load limit for the new expert.")
@common
def review_reassign(env: Env, app_id: str, from_expert: str, to_expert: str, reason: str,
                    max_load: int | None) -> None:
    """Give an expert's slot on APPLICATION to another expert, with the conflict and load checks.

    \b
    Example:  starfund review reassign 2025-project-00012 --from E007 --to E031 --reason "on leave"
    """
    from lifecycle.acts import reviewing

    with db.transaction(env.engine) as s:
        r = reviewing.reassign(s.connection(), app_id, from_expert, to_expert, env.actor,
                               reason, max_load)
    echo(f"{app_id}: {from_expert} -> {to_expert} (now {r['to_load']} applications "
               f"for {to_expert})")


@review_group.command("recuse")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--expert", required=True, metavar="EXPERT", help="The expert declaring a conflict.")
@click.option("--reason", required=True, help="The conflict declared (audited).")
@common
def review_recuse(env: Env, app_id: str, expert: str, reason: str) -> None:
    """Record that an assigned expert declares a conflict (回避); its slot is freed for reassignment.

    \b
    Example:  starfund review recuse 2025-project-00012 --expert E007 --reason "co-author of the PI"
    """
    from lifecycle.acts import reviewing

    with db.transaction(env.engine) as s:
        r = reviewing.recuse(s.connection(), app_id, expert, reason, env.actor)
    echo(f"{expert} recused from {app_id}; {r['experts_left']} expert(s) left. Fill the slot "
               f"with `starfund review reassign {app_id} --from {expert} --to EXPERT` or "
               "`starfund review assign CALL`.")


@review_group.command("sheet")
@click.argument("call_id", metavar="CALL")
@click.argument("expert_id", metavar="EXPERT")
@click.option("--out", "out", type=OutputPath(),
              help="File to write [default: scores-CALL-EXPERT.xlsx].")
@common
def review_sheet(env: Env, call_id: str, expert_id: str, out: str | None) -> None:
    """Write the blank score sheet (XLSX) EXPERT fills in: one row per assigned application.

    \b
    Example:  starfund review sheet 2025-project E007 --out E007.xlsx
    """
    from lifecycle.acts import scoresheets

    path = out or f"scores-{call_id}-{expert_id}.xlsx"
    with env.engine.connect() as conn:
        n = scoresheets.blank(conn, call_id, expert_id, path)
    echo(f"{path}: {n} application(s) for {expert_id} to score")


@review_group.command("import")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def review_import(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import returned score sheets (CSV or XLSX), all or nothing.

    Wide layout: expert_id, application_id and one column per criterion id;
    long layout: expert_id, application_id, criterion, score. Re-importing an
    expert's sheet is how a score is corrected (audited with old and new values).

    \b
    Example:  starfund review import 2025-project E007.xlsx
    """
    from lifecycle.acts import scoresheets

    r = _import(env, scoresheets.import_file, call_id, file, encoding=encoding)
    echo(f"{file}: {r['scored']} sheet(s) scored, {r['corrected']} corrected, "
               f"{r['unchanged']} unchanged")


@review_group.command("panel")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--score", required=True, type=click.FloatRange(0, 100),
              help="The panel's score (0..100).")
@click.option("--reason", required=True, help="The panel's reasoning (audited).")
@common
def review_panel(env: Env, app_id: str, score: float, reason: str) -> None:
    """Record the panel decision for an application whose reviewers disagreed (flagged).

    A flagged application blocks ranking until its panel decision is recorded;
    the panel's score replaces the aggregate.

    \b
    Example:  starfund review panel 2025-project-00012 --score 84 --reason "panel of 2025-05-08"
    """
    from lifecycle.acts import reviewing

    with db.transaction(env.engine) as s:
        r = reviewing.panel_decision(s.connection(), app_id, score, reason, env.actor)
    echo(f"{app_id}: panel score {r['score']:g} recorded (reviewers' spread "
               f"{r['spread']:.2f})")


# --- fair competition, notice and objections ---------------------------------------------

@main.command("rank")
@click.argument("call_id", metavar="CALL")
@click.option("--xlsx", type=OutputPath(), help="Also write the table to this XLSX.")
@json_option
@common
def rank_table(env: Env, call_id: str, xlsx: str | None) -> None:
    """The ranking table of CALL per category, with each application's reason.

    Before `advance CALL rank` it is a preview of what ranking would decide;
    afterwards it shows what was decided. Flagged applications (reviewers
    disagree) are marked and wait for `review panel`.

    \b
    Example:  starfund rank 2025-project --xlsx ranking.xlsx
    """
    from lifecycle.acts import ranking

    with env.engine.connect() as conn:
        data = ranking.table(conn, engine.load_call(conn, call_id))
    if xlsx:
        ranking.write_xlsx(data, xlsx)
    if env.as_json:
        return emit_json(data)
    echo(f"{call_id} ranking: pass mark {data['pass_mark']:g}"
               + (", totals normalised per expert" if data["normalised"] else ""))
    for cat in dict.fromkeys(r["category"] for r in data["rows"]):
        rows = [r for r in data["rows"] if r["category"] == cat]
        table(f"{cat} ({rows[0]['stage']})",
              ["rank", "application", "score", "min", "spread", "n", "grant", "ok", "why"],
              [[r["rank"], r["application"], r["score"], r["minimum"],
                f"{r['spread']}" + (" FLAG" if r["flagged"] and r["panel"] is None else
                                    " panel" if r["panel"] is not None else ""),
                r["reviews"], "" if r["grant"] is None else f"{r['grant']:,}",
                {True: "yes", False: "no"}.get(r["recommended"], ""),
                (r["reason"] or "").split(": ", 1)[-1]] for r in rows])
    if xlsx:
        echo(f"written to {xlsx}")


@main.group("notice")
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

    Proposed applications enter the notice (open_notice) if they have not yet;
    the page lists them per category with amounts, the objection channel and
    the end date. Publishing again re-renders the page.

    \b
    Example:  starfund notice publish 2025-project --html notice.html
    """
    from lifecycle.acts import notice

    r = notice.publish(env.engine, call_id, html, env.actor, language)
    if env.as_json:
        return emit_json(r)
    echo(f"{html}: {r['listed']} project(s), {r['total']:,} yuan; notice "
               + (f"opened for {r['opened']}, " if r["opened"] else "")
               + f"runs until {r['last_day']} (ends {r['ends']})")


@main.group("objection")
def objection_group() -> None:
    """Objections (异议) filed during the public notice."""


@objection_group.command("file")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--by", required=True, help="The objector's name (named objections only).")
@click.option("--contact", required=True, help="How to reach the objector.")
@click.option("--reason", required=True, help="What is objected to.")
@click.option("--evidence", type=SafePath(dir_okay=False), help="A file of evidence (kept).")
@json_option
@common
def objection_file(env: Env, app_id: str, by: str, contact: str, reason: str,
                   evidence: str | None) -> None:
    """File a named objection against APPLICATION during the public notice.

    The application cannot be awarded while the objection is open.

    \b
    Example:  starfund objection file 2025-project-00012 --by "王明" --contact 13800000000 \\
                  --reason "budget copied from 2023 project" --evidence letter.pdf
    """
    from lifecycle.acts import objections

    r = objections.file(env.engine, app_id, by, contact, reason, env.actor, evidence)
    if env.as_json:
        return emit_json(r)
    echo(f"objection {r['objection']} filed against {app_id} ({r['state']}); "
               f"notice ends {r['notice_ends']}")


@objection_group.command("resolve")
@click.argument("objection_id", metavar="ID", type=ROW_ID)
@click.option("--uphold", "decision", flag_value="uphold", help="The objection holds.")
@click.option("--dismiss", "decision", flag_value="dismiss", help="The objection fails.")
@click.option("--reason", required=True, help="The decision's reasoning (audited).")
@json_option
@common
def objection_resolve(env: Env, objection_id: int, decision: str | None, reason: str) -> None:
    """Decide objection ID: upheld (the application is rejected, or sent back to review if the
    call says so) or dismissed (back in notice, or awarded if the notice is over).

    \b
    Example:  starfund objection resolve 3 --dismiss --reason "budget checked, no copying"
    """
    from lifecycle.acts import objections

    if decision is None:
        raise click.UsageError("say --uphold or --dismiss")
    r = objections.resolve(env.engine, objection_id, decision == "uphold", reason, env.actor)
    if env.as_json:
        return emit_json(r)
    where = (f"now {r['moved']}" if r["moved"] else
             f"still held by open objection(s) {', '.join(map(str, r['still_open']))}")
    echo(f"objection {objection_id} {r['decision']}; {r['application']} {where}")


@objection_group.command("list")
@click.argument("call_id", metavar="[CALL]", required=False)
@click.option("--status", type=click.Choice(["open", "upheld", "dismissed", "moot"]))
@json_option
@common
def objection_list(env: Env, call_id: str | None, status: str | None) -> None:
    """List objections, of one call or all.

    \b
    Example:  starfund objection list 2025-project --status open
    """
    from lifecycle.acts import objections

    with env.engine.connect() as conn:
        known(conn, call_id)
        rows = objections.listing(conn, call_id, status)
    if env.as_json:
        return emit_json(rows)
    table("objections", ["id", "application", "by", "filed", "status", "reason", "resolution"],
          [[r["id"], r["application_id"], r["filed_by"], r["filed_at"], r["status"], r["reason"],
            r["resolution"]] for r in rows])


if __name__ == "__main__":
    main()
