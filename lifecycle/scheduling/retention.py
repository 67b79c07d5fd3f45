"""The retention purge: personal data that has outlived its category is cleared, once a day.

Each category of the register (`lifecycle.core.personal.RETENTION`) that has a period is
purged here: failed sign-ins and expired sessions deleted; delivered messages' addresses
and contents (and the file channel's copies) cleared; score drafts and the uploads of
applications not funded cleared once their call has closed; objectors' contact details once
their objection was resolved. The periods are settings (STARFUND_RETENTION_<NAME>_DAYS).

The scheduler runs it at every sync; the day's `purges` row, written in the purge's own
transaction, makes it run once a day whoever gets there first (two schedulers, a restart, a
manual `starfund retention purge`), as deadlines fire once. One `retention_purge` event
records the counts, never a value.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lifecycle.console import Env, common, echo, emit_json, json_option, setting_option
from lifecycle.core import audit, clock, db, personal, sealing
from lifecycle.core.models import (
    AccountLink,
    AccountToken,
    Application,
    Assignment,
    Attachment,
    AuditEvent,
    Call,
    LoginAttempt,
    Notification,
    Objection,
    Purge,
)
from lifecycle.engine import permissions
from lifecycle.kinds import base as kinds


def periods(overrides: dict[str, int | None] | None = None) -> dict[str, int]:
    """Each purged category's period in days: the register's default, or the setting."""
    out = {name: r.days for name, r in personal.RETENTION.items()
           if r.days is not None and name != "finance"}
    for name, days in (overrides or {}).items():
        if days is not None and name in out:
            out[name] = days
    return out


def closed_calls(conn: Connection) -> dict[str, datetime]:
    """Calls whose every application is in a final state of the call's workflow, with when
    the last of them got there (one query per call: calls are few)."""
    out = {}
    for call_id, workflow in conn.execute(select(Call.id, Call.workflow)):
        try:
            finals = [s.name for s in kinds.of(workflow).workflow.states if s.final]
        except kinds.UnknownKind:
            continue
        open_ = conn.execute(select(Application.id).where(
            Application.call_id == call_id, Application.state.not_in(finals)).limit(1)).first()
        if open_ is not None:
            continue
        last = conn.execute(select(func.max(AuditEvent.at)).where(
            AuditEvent.call_id == call_id, AuditEvent.to_state.is_not(None))).scalar()
        if last is not None:
            out[call_id] = datetime.fromisoformat(last) if isinstance(last, str) else last
    return out


def purge(conn: Connection, actor: Any, days: dict[str, int], outbox: str | Path | None = None,
          now: datetime | None = None, force: bool = False) -> dict[str, Any] | None:
    """Today's purge in this transaction; None when today's was done already (unless `force`:
    a manual run again the same day, recorded under the same day's row)."""
    actor = permissions.require(conn, actor, "retention.purge")
    now = now or clock.now()
    day = now.strftime("%Y-%m-%d")
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    claimed = conn.execute(dialect.insert(Purge).values(day=day, ran_at=clock.wall(), counts={})
                           .on_conflict_do_nothing().returning(Purge.day)).first()
    if claimed is None and not force:
        return None
    cut = {name: now - timedelta(days=d) for name, d in days.items()}
    counts = {
        "login_attempts": conn.execute(delete(LoginAttempt).where(
            LoginAttempt.at < cut["login_attempts"])).rowcount,
        "tokens": conn.execute(delete(AccountToken).where(
            AccountToken.expires_at < cut["tokens"])).rowcount
        + conn.execute(delete(AccountLink).where(
            AccountLink.expires_at < cut["tokens"])).rowcount,
        "outbox": _outbox(conn, cut["outbox"], outbox),
        "objections": conn.execute(update(Objection).where(
            Objection.status != "open", Objection.resolved_at < cut["objections"],
            or_(Objection.contact != "", Objection.evidence_data.is_not(None))).values(
            contact="", evidence="", evidence_data=None)).rowcount,
    }
    closed = closed_calls(conn)
    drafts_of = [c for c, at in closed.items() if at < cut["drafts"]]
    files_of = [c for c, at in closed.items() if at < cut["attachments"]]
    counts["drafts"] = conn.execute(update(Assignment).where(
        Assignment.call_id.in_(drafts_of), Assignment.draft.is_not(None)).values(
        draft=None, draft_at=None)).rowcount if drafts_of else 0
    counts["attachments"] = conn.execute(update(Attachment).where(
        Attachment.call_id.in_(files_of), Attachment.filename != sealing.ERASED,
        Attachment.application_id.in_(select(Application.id).where(
            Application.call_id.in_(files_of),
            or_(Application.granted_amount.is_(None), Application.granted_amount <= 0))))
        .values(filename=sealing.ERASED, data=b"")).rowcount if files_of else 0
    conn.execute(update(Purge).where(Purge.day == day).values(counts=counts,
                                                               ran_at=clock.wall()))
    audit.record(conn, actor, [audit.Event("retention_purge", payload={
        "day": day, "counts": counts, "days": days})])
    return {"day": day, **counts}


def _outbox(conn: Connection, cut: datetime, outbox: str | Path | None) -> int:
    """Delivered messages older than `cut`: address and contents cleared, file copy removed."""
    old = and_(Notification.status == "sent", Notification.sent_at < cut,
               Notification.recipient != "")
    if outbox is not None:
        from notifications.channels import file_name

        for key in conn.execute(select(Notification.dedupe_key).where(old)
                                .execution_options(yield_per=1000)).scalars():
            copy = Path(outbox) / file_name(key)
            if copy.exists():
                copy.unlink()
    return conn.execute(update(Notification).where(old).values(
        recipient="", context={}, edited=None)).rowcount


def run_daily(engine: Engine, actor: Any, days: dict[str, int],
              outbox: str | Path | None = None) -> dict[str, Any] | None:
    """The scheduler's pass: today's purge if nobody did it yet (its own transaction)."""
    with engine.begin() as conn:
        done = purge(conn, actor, days, outbox)
    if done is not None:
        db.scrub(engine)
    return done


# --- commands: starfund retention ... ----------------------------------------------------------

@click.group("retention")
def retention_group() -> None:
    """Retention of personal data: the periods, and the daily purge."""


@retention_group.command("purge")
@click.option("--again", is_flag=True, help="Purge even if today's purge ran already.")
@setting_option("--outbox", setting="outbox", default="outbox", show_default=True,
                help="The file channel's folder, whose old copies go too [env STARFUND_OUTBOX].")
@json_option
@common
def retention_purge(env: Env, again: bool, outbox: str) -> None:
    """Purge the personal data past its retention now (the scheduler does it once a day).

    \b
    Example:  starfund retention purge
    """
    env.service = True  # the service user may purge (cron), as the scheduler does daily
    with env.engine.begin() as conn:
        r = purge(conn, env.actor, periods(settings_days(env)), outbox, force=again)
    if r is not None:
        db.scrub(env.engine)
    if env.as_json:
        return emit_json(r or {"day": clock.now().strftime("%Y-%m-%d"), "done_already": True})
    if r is None:
        echo("today's purge ran already (the scheduler's, or an earlier one); --again to run "
             "it once more")
        return
    echo(f"purged {r['day']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "day"))


@retention_group.command("show")
@json_option
@common
def retention_show(env: Env) -> None:
    """The retention periods in force, and the last purges.

    \b
    Example:  starfund retention show
    """
    days = periods(settings_days(env))
    with env.engine.connect() as conn:
        permissions.require(conn, env.actor, "read")
        last = [dict(r._mapping) for r in conn.execute(
            select(Purge.day, Purge.counts).order_by(Purge.day.desc()).limit(7))]
    rows = [{"category": name, "title": r.title, "days": days.get(name, r.days),
             "after": r.after, "then": r.purge} for name, r in personal.RETENTION.items()]
    if env.as_json:
        return emit_json({"categories": rows, "purges": last})
    from lifecycle.console import table

    table("retention", ["category", "what", "days", "counted from", "then"],
          [[r["category"], r["title"], r["days"] if r["days"] is not None else "on request",
            r["after"] or "-", r["then"]] for r in rows])
    for p in last:
        echo(f"purge {p['day']}: " + ", ".join(f"{k} {v}" for k, v in p["counts"].items()))


def settings_days(env: Env) -> dict[str, int | None]:
    """The STARFUND_RETENTION_*_DAYS settings of this run."""
    get = env.settings.get if env.settings is not None else (lambda _name: None)
    return {name: get(f"retention_{name}_days") for name, r in personal.RETENTION.items()
            if r.days is not None}
