"""Creating calls from their TOML configuration."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Connection, insert, select

from lifecycle import kinds
from lifecycle.console import Env, SafePath, common, echo, emit_json, json_option, table
from lifecycle.core import audit, clock
from lifecycle.core.callconfig import CallConfig, ConfigError
from lifecycle.core.models import Call
from lifecycle.core.workdays import NotCovered
from lifecycle.engine import engine, permissions
from lifecycle.engine.machine import UnknownWorkflow, for_workflow


def create(conn: Connection, config: CallConfig, actor: str, source: str = "<call>") -> CallConfig:
    """Store a validated call; refuses an id already taken or an unknown workflow."""
    actor = permissions.require(conn, actor, "call.create")
    try:
        for_workflow(config.workflow)
    except UnknownWorkflow as e:
        raise ConfigError(f"{source}: field workflow: {e}") from None
    if conn.execute(select(Call.id).where(Call.id == config.id)).first():
        raise ConfigError(f"{source}: field id: a call {config.id!r} already exists")
    check_notice_calendar(config, source)
    config = engine.pinned(config)
    data = config.model_dump(mode="json")
    conn.execute(insert(Call).values(id=config.id, title=config.title, workflow=config.workflow,
                                     config=data, created_at=clock.now(), advance_count=0))
    audit.record(conn, actor, [audit.Event("call_create", config.id, payload={
        "source": source, "config": data})])
    return config


def check_notice_calendar(config: CallConfig, source: str) -> None:
    """Refuse a call whose working-day notice, opened when reviews are due, would count days of
    a year the installed calendar does not cover and the call does not list (never a guess)."""
    cal = config.calendar
    if not cal.notice_working_days:
        return
    try:
        config.notice_end(cal.review_due)
    except NotCovered as e:
        raise ConfigError(f"{source}: field calendar.listed_years: the notice, opening when "
                          f"reviews are due ({cal.review_due:%Y-%m-%d}), counts {cal.notice_days} "
                          f"working days: {e}") from None


def create_from_file(conn: Connection, path: str | Path, actor: str) -> CallConfig:
    """Validate a call file (every bad field named at once, the workflow too) and store it."""
    return create(conn, kinds.load(path), actor, str(path))


def list_calls(conn: Connection) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(
        select(Call.id, Call.title, Call.workflow, Call.created_at).order_by(Call.created_at))]


# --- commands: starfund call ... ----------------------------------------------------------

@click.group("call")
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
    with env.engine.begin() as conn:
        config = create_from_file(conn, file, env.actor)
    echo(f"call {config.id} created: {config.title} ({config.workflow}, "
         f"{len(config.categories)} categories, budget {config.budget_total:,})")


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for n, pair in enumerate(pairs, start=1):
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise click.BadParameter(f"--map number {n} ({pair!r}): write OLD_STATE=NEW_STATE",
                                     param_hint="--map")
        out[old.strip()] = new.strip()
    return out


@call_group.command("migrate")
@click.argument("call_id", metavar="CALL")
@click.option("--map", "pairs", multiple=True, metavar="OLD=NEW",
              help="Where applications in a state the current definition lacks go (repeat).")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@json_option
@common
def call_migrate(env: Env, call_id: str, pairs: tuple[str, ...], dry_run: bool) -> None:
    """Move a running call to this starfund's definition of its workflow.

    A call keeps the workflow definition it was created with; `advance` refuses a call
    whose definition the code no longer has. This names what differs, moves the applications
    of each state that disappeared as --map says (one audited act), and records the new
    version. Run it with --dry-run first.

    \b
    Example:  starfund call migrate 2025-project --map ranked=reviewed --dry-run
    """
    mapping = _mapping(pairs)
    with env.engine.begin() as conn:
        done = engine.migrate(conn, call_id, mapping, env.actor, dry_run=dry_run)
    if env.as_json:
        return emit_json(done.as_dict())
    verb = "would move" if dry_run else "moved"
    echo(f"call {call_id}: definition {done.old or '(unversioned)'} -> {done.new}"
         + (" (dry run: nothing changed)" if dry_run else ""))
    for line in done.gone:
        echo(f"  - {line}")
    for line in done.added:
        echo(f"  + {line}")
    for what, n in done.moved.items():
        echo(f"  {verb} {n} application(s) {what}")


@call_group.command("list")
@json_option
@common
def call_list(env: Env) -> None:
    """List the calls.

    \b
    Example:  starfund call list --json
    """
    with env.engine.connect() as conn:
        rows = list_calls(conn)
    if env.as_json:
        return emit_json(rows)
    table("calls", ["id", "title", "workflow", "created"],
          [[r["id"], r["title"], r["workflow"], r["created_at"]] for r in rows])
