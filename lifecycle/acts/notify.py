"""Notifications and their templates: deliver the outbox, list and re-queue messages, check
and preview templates (`starfund notify ...`, `starfund templates ...`)."""
from __future__ import annotations

import sys
from typing import Any

import click

from lifecycle.acts import messages
from lifecycle.acts.reports import known
from lifecycle.core import permissions
from lifecycle.core.console import (
    MAX_COUNT,
    ROW_ID,
    Env,
    SafePath,
    channel_factory,
    channel_options,
    common,
    echo,
    emit_json,
    json_option,
    setting_option,
    table,
)
from lifecycle.core.errors import BadValue
from notifications import channels, delivery, render


@click.group("notify")
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
    permissions.check(env.engine, env.actor, "notify.send")
    channel = channel_factory(channels.make, kw, env)()
    r = delivery.drain(env.engine, channel, max_attempts=kw["max_attempts"],
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
    with env.engine.connect() as conn:
        known(conn, call_id, application_id)
        rows = delivery.listing(conn, "failed" if failed else status, call_id, application_id,
                              in_doubt, limit or None)
        totals = delivery.counts(conn)
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
    with env.engine.begin() as conn:
        permissions.require(conn, env.actor, "notify.send")
        n = delivery.requeue(conn, env.actor, list(ids) or None, in_doubt)
    echo(f"{n} notification(s) re-queued; deliver them with `starfund notify send`")


@click.group("templates")
def templates_group() -> None:
    """Message templates: check them, preview one against real data."""


@templates_group.command("check")
@setting_option("--templates", "templates_dir", setting="templates",
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
    r = messages.check(templates_dir)
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
@setting_option("--templates", "templates_dir", setting="templates",
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
    with env.engine.connect() as conn:
        ctx, recipient, lang = messages.preview(conn, kind, app_id, expert_id)
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
