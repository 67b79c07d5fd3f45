"""Notifications and their templates: deliver the outbox, list and re-queue messages, check
and preview templates (`starfund notify ...`, `starfund templates ...`)."""
from __future__ import annotations

import sys
from typing import Any

import click

from lifecycle.acts import messages
from lifecycle.acts.reports import known
from lifecycle.console import (
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
    letterhead,
    setting_option,
    table,
)
from lifecycle.core.errors import BadValue
from lifecycle.engine import permissions
from lifecycle.progress_bar import shown
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
    actor = env.actor
    with shown(env, "notify send",
               interrupted="what was sent and recorded stays; messages claimed but not yet "
                           "recorded are settled by a later run once their lease ends "
                           "(`notify list --in-doubt`)") as progress:
        r = delivery.drain(env.engine, channel, max_attempts=kw["max_attempts"],
                           backoff_seconds=kw["backoff_seconds"], actor=actor,
                           templates=kw["templates_dir"], progress=progress)
    if env.as_json:
        return emit_json(r.as_dict())
    echo(f"notifications via {channel!r}: {r.sent} sent, {r.retrying} to retry, "
         f"{r.failed} failed, {r.in_doubt} in doubt, {r.deferred} deferred"
         + (f", {r.resolved} settled after an interrupted send" if r.resolved else ""))
    if r.local:
        echo(f"deferred without using an attempt: {r.local}", err=True)
    if r.in_doubt:
        echo(f"{r.in_doubt} in doubt (may have arrived): `starfund notify list --in-doubt`",
             err=True)
    for line in r.errors[:20]:
        echo(f"  failed {line}", err=True)


@notify_group.command("list")
@click.option("--failed", is_flag=True, help="Only messages that failed for good.")
@click.option("--status", type=click.Choice(["pending", "held", "sending", "sent", "failed",
                                            "discarded"]),
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


@notify_group.group("outbox")
def outbox_group() -> None:
    """Messages held for review (the call's `mail.hold` kinds): list, show, edit, release,
    discard. Delivery sends only released messages and kinds sent at once."""


def _letter(env: Env, row: Any, templates_dir: str | None) -> render.Rendered:
    try:
        return delivery.letter(env.engine, row, templates_dir, letterhead(env))
    except Exception as e:  # noqa: BLE001 - a template error is the answer here
        raise BadValue(f"template {row.language}/{row.kind} does not render: "
                       f"{type(e).__name__}: {e}") from e


@outbox_group.command("list")
@click.option("--call", "call_id", help="Only this call.")
@click.option("--kind", help="Only this message kind.")
@json_option
@common
def outbox_list(env: Env, call_id: str | None, kind: str | None) -> None:
    """The held messages, oldest first, with their totals per kind.

    \b
    Example:  starfund notify outbox list --kind rejected
    """
    with env.engine.connect() as conn:
        permissions.require(conn, env.actor, "notify.review")
        known(conn, call_id, None)
        rows = [r for r in delivery.listing(conn, "held", call_id, None, limit=None)
                if not kind or r["kind"] == kind]
    if env.as_json:
        return emit_json(rows)
    table("held messages", ["id", "kind", "application", "to", "lang", "edited", "held since"],
          [[r["id"], r["kind"], r["application"] or "", r["to"], r["language"],
            "yes" if r["edited"] else "", (r["created_at"] or "")[:16]] for r in rows])
    per: dict[str, int] = {}
    for r in rows:
        per[r["kind"]] = per.get(r["kind"], 0) + 1
    echo(f"{len(rows)} held" + (": " + ", ".join(f"{n} {k}" for k, n in sorted(per.items()))
                                if per else "") +
         ("; release them with `starfund notify outbox release`" if rows else ""))


@outbox_group.command("show")
@click.argument("notification_id", type=ROW_ID, metavar="ID")
@setting_option("--templates", "templates_dir", setting="templates",
                 type=SafePath(file_okay=False), help="Override folder [env STARFUND_TEMPLATES].")
@json_option
@common
def outbox_show(env: Env, notification_id: int, templates_dir: str | None) -> None:
    """The message ID as it would go out now (its edit, else its template).

    \b
    Example:  starfund notify outbox show 17
    """
    with env.engine.connect() as conn:
        permissions.require(conn, env.actor, "notify.review")
        row = delivery.held_one(conn, notification_id)
    out = _letter(env, row, templates_dir)
    files = [a.filename for a in out.attachments]
    if env.as_json:
        return emit_json({"id": row.id, "kind": row.kind, "status": row.status, "to": row.recipient,
                          "language": row.language, "edited": row.edited,
                          "subject": out.subject, "body": out.body, "attachments": files})
    echo(f"#{row.id} {row.kind} [{row.status}]{' (edited)' if row.edited else ''}\n"
         f"To: {row.recipient}\nLanguage: {row.language}\nSubject: {out.subject}"
         + (f"\nAttached: {', '.join(files)}" if files else "") + f"\n\n{out.body}")


@outbox_group.command("edit")
@click.argument("notification_id", type=ROW_ID, metavar="ID")
@click.option("--subject", help="The new subject (default: keep it).")
@click.option("--body-file", type=SafePath(exists=True, dir_okay=False),
              help="A UTF-8 text file with the new body (default: keep it).")
@setting_option("--templates", "templates_dir", setting="templates",
                 type=SafePath(file_okay=False), help="Override folder [env STARFUND_TEMPLATES].")
@common
def outbox_edit(env: Env, notification_id: int, subject: str | None, body_file: str | None,
                templates_dir: str | None) -> None:
    """Rewrite a held message's subject and/or body before it goes (audited: old and new).

    \b
    Example:  starfund notify outbox edit 17 --body-file letter-17.txt
    """
    if subject is None and body_file is None:
        raise BadValue("give --subject and/or --body-file: nothing to change")
    body = None
    if body_file is not None:
        try:
            body = open(body_file, encoding="utf-8").read()  # noqa: SIM115
        except UnicodeDecodeError as e:
            raise BadValue(f"--body-file {body_file}: not UTF-8 text ({e.reason} at byte "
                           f"{e.start})") from None
        if not body.strip():
            raise BadValue(f"--body-file {body_file}: the body is empty")
    if subject is not None and (not subject.strip() or "\n" in subject or "\r" in subject):
        raise BadValue("--subject must be one non-empty line")
    with env.engine.begin() as conn:
        permissions.require(conn, env.actor, "notify.review")
        row = delivery.held_one(conn, notification_id)
        before = _letter(env, row, templates_dir)
        delivery.edit(conn, env.actor, notification_id, subject.strip() if subject else
                      before.subject, body if body is not None else before.body, before)
    echo(f"notification {notification_id} edited (the change is in the audit trail); "
         "release it with `starfund notify outbox release --id "
         f"{notification_id}`")


@outbox_group.command("release")
@click.option("--id", "ids", multiple=True, type=ROW_ID, metavar="N",
              help="Only these messages (repeatable).")
@click.option("--kind", help="Only held messages of this kind.")
@click.option("--call", "call_id", help="Only this call's held messages.")
@click.option("--all", "everything", is_flag=True, help="Every held message.")
@common
def outbox_release(env: Env, ids: tuple[int, ...], kind: str | None, call_id: str | None,
                   everything: bool) -> None:
    """Let held messages go: they are delivered by the next `notify send` (audited).

    \b
    Example:  starfund notify outbox release --id 17 --id 18
              starfund notify outbox release --kind rejected --call 2025-project
    """
    if not (ids or kind or call_id or everything):
        raise BadValue("say which: --id N, --kind KIND, --call CALL, or --all")
    with env.engine.begin() as conn:
        permissions.require(conn, env.actor, "notify.review")
        known(conn, call_id, None)
        n = delivery.release(conn, env.actor, list(ids) or None, kind, call_id)
    echo(f"{n} message(s) released; deliver them with `starfund notify send`")


@outbox_group.command("discard")
@click.option("--id", "ids", multiple=True, type=ROW_ID, metavar="N", required=True,
              help="The messages to discard (repeatable).")
@click.option("--reason", required=True, help="Why they must not go (kept in the audit trail).")
@common
def outbox_discard(env: Env, ids: tuple[int, ...], reason: str) -> None:
    """Never send these held messages (audited with the reason).

    \b
    Example:  starfund notify outbox discard --id 17 --reason "sent by hand after a phone call"
    """
    if not reason.strip():
        raise BadValue("--reason must not be empty")
    with env.engine.begin() as conn:
        permissions.require(conn, env.actor, "notify.review")
        n = delivery.discard(conn, env.actor, list(ids), reason.strip())
    echo(f"{n} message(s) discarded")


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
        out = render.render(kind, lang, ctx, templates_dir, letterhead(env))
    except Exception as e:  # noqa: BLE001 - a template error is the answer here
        raise BadValue(f"template {lang}/{kind} does not render: {type(e).__name__}: {e}") from e
    if env.as_json:
        return emit_json({"kind": kind, "language": lang, "to": recipient,
                          "subject": out.subject, "body": out.body, "html": out.html,
                          "context": ctx})
    echo(f"To: {recipient}\nLanguage: {lang}\nSubject: {out.subject}\n\n{out.body}")
    if show_html and out.html:
        echo(f"--- html ---\n{out.html}")
