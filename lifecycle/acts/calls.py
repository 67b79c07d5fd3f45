"""Creating calls from their TOML configuration."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, insert, select

from lifecycle.core import audit, callconfig, clock
from lifecycle.core.callconfig import CallConfig, ConfigError
from lifecycle.core.machine import UnknownWorkflow, for_workflow
from lifecycle.core.models import Call


def create(conn: Connection, config: CallConfig, actor: str, source: str = "<call>") -> CallConfig:
    """Store a validated call; refuses an id already taken or an unknown workflow."""
    try:
        for_workflow(config.workflow)
    except UnknownWorkflow as e:
        raise ConfigError(f"{source}: field workflow: {e}") from None
    if conn.execute(select(Call.id).where(Call.id == config.id)).first():
        raise ConfigError(f"{source}: field id: a call {config.id!r} already exists")
    data = config.model_dump(mode="json")
    conn.execute(insert(Call).values(id=config.id, title=config.title, workflow=config.workflow,
                                     config=data, created_at=clock.now(), advance_count=0))
    audit.record(conn, actor, [audit.Event("call_create", config.id, payload={
        "source": source, "config": data})])
    return config


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
