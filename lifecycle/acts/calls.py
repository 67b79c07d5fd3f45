"""Creating calls from their TOML configuration."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Connection, insert, select

from lifecycle.core import audit, callconfig, clock, permissions
from lifecycle.core.callconfig import CallConfig, ConfigError
from lifecycle.core.console import Env, SafePath, common, echo, emit_json, json_option, table
from lifecycle.core.machine import UnknownWorkflow, for_workflow
from lifecycle.core.models import Call
from lifecycle.core.workdays import NotCovered


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


def _workflow_problem(name: str) -> str | None:
    try:
        for_workflow(name)
    except UnknownWorkflow as e:
        return str(e)
    return None


def create_from_file(conn: Connection, path: str | Path, actor: str) -> CallConfig:
    """Validate a call file (every bad field named at once, the workflow too) and store it."""
    return create(conn, callconfig.load(path, _workflow_problem), actor, str(path))


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
