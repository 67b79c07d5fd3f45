"""The scheduling commands: list deadlines, fire those due, run the long-running scheduler
(`starfund deadlines ...`, `starfund scheduler run`)."""
from __future__ import annotations

import logging
import sys
from typing import Any

import click

from lifecycle.console import (
    Env,
    OutputPath,
    channel_factory,
    channel_options,
    common,
    echo,
    emit_json,
    json_option,
    setting_option,
    table,
)
from lifecycle.core import accounts, clock, deadlines, logs
from lifecycle.engine import engine, permissions
from lifecycle.progress_bar import shown
from lifecycle.scheduling import firing, retention
from lifecycle.scheduling.runner import Runner, serve
from notifications import channels


@click.group("deadlines")
def deadlines_group() -> None:
    """Deadlines: dated events of calls, fired by `deadlines run-due` or `scheduler run`."""


@deadlines_group.command("list")
@click.argument("call_id", metavar="[CALL]", required=False)
@click.option("--pending", is_flag=True, help="Only deadlines not fired yet.")
@json_option
@common
def deadlines_list(env: Env, call_id: str | None, pending: bool) -> None:
    """List deadlines (of one call or all): overdue, upcoming, and done (fired or skipped).

    Times are the programme's (STARFUND_TZ), named in the first line. Overdue:
    due but not fired yet (the scheduler has not run, or firing fails and is
    retried). A reminder that was no longer useful is `skipped`, with why.

    \b
    Example:  starfund deadlines list 2025-project
              starfund deadlines list --pending --json
    """
    now = clock.now()
    with env.engine.connect() as conn:
        if call_id is not None:
            engine.load_call(conn, call_id)  # refuse a call that does not exist
        rows = deadlines.listing(conn, call_id, pending, now)
    if env.as_json:
        return emit_json(rows)
    zone = deadlines.zone_label(now)
    echo(f"now {now:%Y-%m-%d %H:%M}, times in {zone}")
    overdue = [r for r in rows if r["standing"] == "overdue"]
    upcoming = [r for r in rows if r["standing"] == "upcoming"]
    done = [r for r in rows if r["standing"] not in ("overdue", "upcoming")]
    if overdue:
        table(f"overdue: due, not fired ({len(overdue)})",
              ["call", "kind", "due", "fires", "tries", "why not yet"],
              [[r["call"], r["kind"], r["due_at"][:16], r["fires"], r["attempts"],
                (f"retry after {r['retry_at'][:16]}: {r['last_error']}" if r["last_error"]
                 else "waiting for the scheduler (`deadlines run-due`)")[:60]] for r in overdue])
    table(f"upcoming ({len(upcoming)})", ["call", "kind", "due", "action", "fires"],
          [[r["call"], r["kind"], r["due_at"][:16], r["action"], r["fires"]] for r in upcoming])
    if done:
        table(f"done ({len(done)}: {sum(r['standing'] == 'skipped' for r in done)} skipped)",
              ["call", "kind", "due", "fired", "outcome", "note"],
              [[r["call"], r["kind"], r["due_at"][:16], r["fired_at"][:16], r["standing"],
                r["note"][:50]] for r in done])


@deadlines_group.command("run-due")
@json_option
@common
def deadlines_run_due(env: Env) -> None:
    """Fire every deadline due now (or at --now), once each, in due order; then exit.

    For cron, and for time travel: `--now` says what time it is. Closing
    deadlines advance their call as the system identity `scheduler` (the trail
    also names you, who ran it); reminder deadlines
    queue reminders (deliver them with `notify send`). A failing deadline is
    reported, retried by a later run, and never marked fired. Exits 1 if any failed.

    \b
    Example:  starfund deadlines run-due
              starfund deadlines run-due --now 2025-04-07T17:00
    """
    env.service = True  # the service user may run it (cron)
    permissions.check(env.engine, env.actor, "deadlines.run")
    actor = accounts.system(by=env.actor.name)
    with shown(env, "deadlines run-due",
               interrupted="the deadline in hand was rolled back (it fires on the next run); "
                           "those fired before it stay fired") as progress:
        firings = firing.run_due(env.engine, clock.now(), actor, progress=progress)
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


@click.group("scheduler")
def scheduler_group() -> None:
    """The long-running scheduler: fires deadlines on time and delivers the outbox."""


@scheduler_group.command("run")
@click.option("--sync-every", type=click.FloatRange(0.1), default=30, show_default=True,
              help="Seconds between passes that pick up new deadlines (and fire anything due).")
@click.option("--drain-every", type=click.FloatRange(0.1), default=5, show_default=True,
              help="Seconds between outbox deliveries.")
@click.option("--anchor-dir", type=OutputPath(folder=True), envvar="STARFUND_ANCHORS",
              help="Sign the audit trail's head into this folder at start and every day, and "
                   "queue it to the auditors [env STARFUND_ANCHORS].")
@setting_option("--log-format", setting="log_format", type=click.Choice(["text", "json"]),
                default=None, help="Logs as text lines or JSON lines, on standard error [env "
                                   "STARFUND_LOG_FORMAT; default text].")
@channel_options
@common
def scheduler_run(env: Env, sync_every: float, drain_every: float, anchor_dir: str | None,
                  log_format: str, **kw: Any) -> None:
    """Run APScheduler until SIGINT/SIGTERM: catch up, fire each deadline on time, deliver mail.

    At start it fires every deadline missed while it was down (in due order) and
    rebuilds its jobs from the deadline rows (job store: the `apscheduler_jobs`
    table of the same database). Several workers may run against one database:
    each deadline and each message is still handled exactly once. Logs go to stderr
    (--log-format json: one JSON object per line). It writes a heartbeat every 30 s
    that the portal's /healthz and /metrics read. Run it as a member of staff, or as
    the service user that owns the chain key (deploy/, docs/operations.md).
    --backoff is the first retry delay of a failed delivery and of a failed
    deadline firing (doubling each time). SIGINT/SIGTERM stop it within seconds
    and it exits 0: the firing or mail batch in hand finishes (committed, or
    recorded as failed), nothing is left claimed, and no new work starts.

    \b
    Example:  starfund scheduler run --db postgresql://starfund@db/starfund
              starfund scheduler run --channel smtp --smtp-host mail.example.org
    """
    logs.configure(log_format)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    env.service = True  # the service user (deploy/starfund-scheduler.service) may run it
    permissions.check(env.engine, env.actor, "deadlines.run")
    runner = Runner(env.engine, channel_factory(channels.make, kw, env),
                    sync_every=sync_every, drain_every=drain_every,
                    actor=accounts.system(by=env.actor.name), max_attempts=kw["max_attempts"],
                    templates=kw["templates_dir"], backoff=kw["backoff_seconds"],
                    anchor_dir=anchor_dir,
                    retention_days=retention.periods(retention.settings_days(env)),
                    outbox=kw["outbox"] if kw["channel"] == "file" else None)
    serve(runner)
