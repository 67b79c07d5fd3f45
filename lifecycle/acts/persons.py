"""A person's data under PIPL: everything held about them, exported; or erased everywhere.

A person is named `KIND:ID`: `account:NAME` (a society contact, staff member or expert
who signs in), `expert:ID` (a reviewer in the registry) or `objector:N` (whoever filed
objection N). What is held about them (`Footprint`) follows the register
(`lifecycle.core.personal`): their account and sessions, the expert's registry row, the
objections they filed (in the portal, or with the same contact), their uploads, the messages
sent to their addresses (and the file channel's copies), and the audit events they did or
that carry their sealed values.

Erasure keeps the trail whole: their sealed values are erased by destroying their keys
(`lifecycle.core.sealing`), values an older release wrote in clear are first sealed and the
rewrite attested (`audit.redact`), and one `person_erase` event records what was done, by
whom and why, holding no erased value. Data a retention rule still holds (uploads of a funded
project) makes it refuse, with the date it becomes possible.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click
from sqlalchemy import Connection, delete, func, or_, select, update

from lifecycle.console import (
    Env,
    OutputPath,
    common,
    echo,
    emit_json,
    json_option,
    setting_option,
)
from lifecycle.core import accounts, audit, clock, personal, sealing
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import (
    Account,
    AccountLink,
    AccountToken,
    Application,
    Attachment,
    AuditEvent,
    Erasure,
    Expert,
    LoginAttempt,
    Notification,
    Objection,
    Society,
)
from lifecycle.engine import permissions

KINDS = ("account", "expert", "objector")
ERASED = sealing.ERASED


class PersonError(BadValue):
    """A person request that cannot be met as asked (nothing was changed)."""


@dataclass
class Footprint:
    """Where one person's data is: the rows and events `export` writes and `erase` clears."""

    person: str
    accounts: list[str] = field(default_factory=list)
    experts: list[str] = field(default_factory=list)
    objections: list[int] = field(default_factory=list)
    attachments: list[int] = field(default_factory=list)
    societies: list[str] = field(default_factory=list)
    """Societies whose contact mailbox is this person's e-mail."""
    notifications: list[int] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)

    @property
    def subjects(self) -> list[str]:
        """Their keys in `subject_keys` (sealing): one per account, expert and objection."""
        return sorted([f"account:{a}" for a in self.accounts]
                      + [f"expert:{e}" for e in self.experts]
                      + [f"objector:{o}" for o in self.objections])


def parse(spec: str) -> tuple[str, str]:
    kind, _, ident = spec.strip().partition(":")
    if kind not in KINDS or not ident:
        raise PersonError(f"{spec!r} names no person: give KIND:ID with KIND one of "
                          f"{', '.join(KINDS)} (e.g. account:s01-contact, expert:E007, "
                          "objector:3)")
    if kind == "objector" and not ident.isdigit():
        raise PersonError(f"{spec!r}: an objector is named by the objection's number "
                          "(objector:3)")
    return kind, ident


def erased(conn: Connection, spec: str) -> Any:
    """The erasure of `spec`, or None."""
    return conn.execute(select(Erasure).where(Erasure.person == spec)).first()


def footprint(conn: Connection, spec: str) -> Footprint:
    """Everything held about the person `spec` (NotFound for an unknown one)."""
    kind, ident = parse(spec)
    f = Footprint(f"{kind}:{ident}")
    if kind == "account":
        _account(conn, f, ident)
    elif kind == "expert":
        _expert(conn, f, ident)
    else:
        row = conn.execute(select(Objection.id, Objection.contact, Objection.filed_account)
                           .where(Objection.id == int(ident))).first()
        if row is None:
            raise NotFound(f"no objection {ident} (objector:{ident} names whoever filed it)")
        _objections(conn, f, [row.id], {row.contact} - {""})
    _linked(conn, f)
    return f


def _account(conn: Connection, f: Footprint, name: str) -> None:
    row = conn.execute(select(Account.name, Account.email, Account.expert_id)
                       .where(Account.name == name)).first()
    if row is None:
        raise NotFound(f"no account {name!r}")
    if row.name == accounts.SYSTEM:
        raise PersonError(f"{name!r} is the system's identity, not a person")
    f.accounts.append(row.name)
    if row.email:
        f.emails.add(row.email)
    if row.expert_id and row.expert_id not in f.experts:
        _expert(conn, f, row.expert_id)


def _expert(conn: Connection, f: Footprint, expert_id: str) -> None:
    row = conn.execute(select(Expert.id, Expert.email).where(Expert.id == expert_id)).first()
    if row is None:
        raise NotFound(f"no expert {expert_id!r}")
    f.experts.append(row.id)
    if row.email:
        f.emails.add(row.email)
    for name in conn.execute(select(Account.name).where(Account.expert_id == expert_id,
                                                        Account.name.not_in(f.accounts))
                             ).scalars():
        _account(conn, f, name)


def _objections(conn: Connection, f: Footprint, ids: list[int], contacts: set[str]) -> None:
    """Objections `ids`, and any other filed with one of `contacts` (the same person)."""
    found = set(ids)
    if contacts:
        found |= set(conn.execute(select(Objection.id)
                                  .where(Objection.contact.in_(contacts))).scalars())
    f.objections = sorted(set(f.objections) | found)


def _linked(conn: Connection, f: Footprint) -> None:
    """What hangs on the accounts and addresses found: objections they filed or gave as
    contact, uploads, mailboxes, messages."""
    if f.accounts:
        filed = list(conn.execute(select(Objection.id).where(
            Objection.filed_account.in_(f.accounts))).scalars())
        _objections(conn, f, filed, set(f.emails))
        uploaders = list(f.accounts) + [f"% as {a}" for a in f.accounts]
        f.attachments = sorted(conn.execute(select(Attachment.id).where(or_(
            Attachment.uploaded_by.in_(f.accounts),
            *(Attachment.uploaded_by.like(u) for u in uploaders[len(f.accounts):])))).scalars())
    contacts = set(conn.execute(select(Objection.contact)
                                .where(Objection.id.in_(f.objections))).scalars()) - {""}
    addresses = f.emails | contacts
    if addresses:
        f.societies = sorted(conn.execute(select(Society.id)
                                          .where(Society.email.in_(addresses))).scalars())
    sent = [Notification.recipient.in_(addresses)] if addresses else []
    if f.experts:
        sent.append((Notification.recipient_kind == "expert")
                    & Notification.recipient_id.in_(f.experts))
    if sent:
        f.notifications = sorted(conn.execute(select(Notification.id)
                                              .where(or_(*sent))).scalars())


# --- retention -------------------------------------------------------------------------------

def held(conn: Connection, f: Footprint, days: int | None = None) -> list[str]:
    """Why the person cannot be erased yet, each with the date it becomes possible (empty:
    nothing holds them). Uploads of a funded application are the project's records (finance
    retention, counted from the end of the year of its last event); an open objection is
    still being decided."""
    days = personal.RETENTION["finance"].days if days is None else days
    out = []
    if f.attachments:
        funded = conn.execute(
            select(Attachment.application_id, func.max(AuditEvent.at).label("last"))
            .join(Application, Application.id == Attachment.application_id)
            .join(AuditEvent, AuditEvent.application_id == Attachment.application_id)
            .where(Attachment.id.in_(f.attachments), Application.granted_amount > 0)
            .group_by(Attachment.application_id).order_by(Attachment.application_id))
        for app_id, last in funded:
            last = datetime.fromisoformat(last) if isinstance(last, str) else last
            until = datetime(last.year + 1, 1, 1) + timedelta(days=days)
            if clock.now() < until:
                out.append(f"the uploads to {app_id} are records of a funded project, kept "
                           f"until {until:%Y-%m-%d} (retention: finance, {days} days after the "
                           f"end of {last.year}); erasure is possible from then")
    for oid, app_id in conn.execute(select(Objection.id, Objection.application_id).where(
            Objection.id.in_(f.objections), Objection.status == "open")):
        out.append(f"objection {oid} against {app_id} is still open; erasure is possible "
                   "once it is resolved")
    return out


# --- export ----------------------------------------------------------------------------------

def _rows(conn: Connection, model: Any, where: Any, drop: tuple[str, ...] = ()) -> list[dict]:
    cols = [c for c in model.__table__.c if c.name not in drop]
    return [{k: _plain(v) for k, v in r._mapping.items()}
            for r in conn.execute(select(*cols).where(where))]


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, bytes):
        return f"({len(v)} bytes: see files/)"
    return v


def events(conn: Connection, f: Footprint) -> list[dict[str, Any]]:
    """The audit events about the person: done by (or for) their accounts, or carrying their
    sealed values; payloads opened (ERASED where a key was destroyed)."""
    t = AuditEvent.__table__
    about = [t.c.payload.like(f'%"{sealing.MARK}":"{s}"%') for s in f.subjects]
    if f.accounts:
        about += [t.c.actor.in_(f.accounts), t.c.by.in_(f.accounts)]
    if f.objections:
        about.append((t.c.action.like("objection_%")) & or_(*(
            t.c.payload.like(f'%"objection":{o},%') | t.c.payload.like(f'%"objection":{o}}}%')
            for o in f.objections)))
    if not about:
        return []
    opener = sealing.Opener(conn, audit.reading_key(conn))
    out = []
    for r in conn.execute(select(t).where(or_(*about)).order_by(t.c.seq)
                          .execution_options(yield_per=1000)):
        e = audit.as_dict(r)
        e["payload"] = opener.open(e["payload"])
        out.append(e)
    return out


def export(conn: Connection, actor: Any, spec: str, out: IO[bytes], lang: str = "zh"
           ) -> dict[str, Any]:
    """Write everything held about `spec` to `out` as a zip: person.json (every row, event
    and message), person.html (the same, to read) and files/ (their uploads and evidence).

    An account holder may export their own (`person.export_own`); anyone else's needs
    `person.export`. An erased person has nothing left to export, and says so.
    """
    kind, ident = parse(spec)
    own = kind == "account" and accounts.resolve(conn, actor).name == ident
    actor = permissions.require(conn, actor, "person.export_own" if own else "person.export")
    gone = erased(conn, f"{kind}:{ident}")
    if gone is not None:
        raise PersonError(f"{kind}:{ident} was erased on {gone.erased_at:%Y-%m-%d} "
                          f"(event {gone.seq}); nothing is held to export")
    f = footprint(conn, spec)
    opener = sealing.Opener(conn, audit.reading_key(conn))
    data: dict[str, Any] = {
        "person": f.person, "exported_at": clock.now().isoformat(sep=" "),
        "exported_by": actor.label,
        "accounts": [{**a, "password_hash": "(set)" if a["password_hash"] else None}
                     for a in _rows(conn, Account, Account.name.in_(f.accounts))],
        "experts": _rows(conn, Expert, Expert.id.in_(f.experts)),
        "objections": _rows(conn, Objection, Objection.id.in_(f.objections)),
        "society_mailboxes": _rows(conn, Society, Society.id.in_(f.societies),
                                   drop=("payee_account",)),
        "attachments": _rows(conn, Attachment, Attachment.id.in_(f.attachments)),
        "messages": [{**m, "context": opener.open(m["context"])} for m in
                     _rows(conn, Notification, Notification.id.in_(f.notifications))],
        "sessions": _rows(conn, AccountToken, AccountToken.account.in_(f.accounts),
                          drop=("token_hash",)),
        "failed_sign_ins": _rows(conn, LoginAttempt, LoginAttempt.account.in_(f.accounts)),
        "audit_events": events(conn, f),
        "register": [h.__dict__ for h in personal.PERSONAL],
    }
    files: list[tuple[str, bytes]] = []
    for a in conn.execute(select(Attachment.id, Attachment.filename, Attachment.data)
                          .where(Attachment.id.in_(f.attachments))):
        files.append((f"files/attachment-{a.id}-{Path(a.filename).name}", a.data or b""))
    for o in conn.execute(select(Objection.id, Objection.evidence, Objection.evidence_data)
                          .where(Objection.id.in_(f.objections))):
        if o.evidence_data:
            files.append((f"files/objection-{o.id}-{Path(o.evidence or 'evidence').name}",
                          o.evidence_data))
    from lifecycle.reporting.documents import render

    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("person.json", json.dumps(data, ensure_ascii=False, indent=1, default=str))
        z.writestr("person.html", render("person.html", data, lang, sections=_SECTIONS))
        for name, content in files:
            z.writestr(name, content)
    audit.record(conn, actor, [audit.Event("person_export", payload={
        "person": f.person, "subjects": f.subjects, "events": len(data["audit_events"]),
        "files": len(files)})])
    return {"person": f.person, "accounts": len(f.accounts), "objections": len(f.objections),
            "attachments": len(f.attachments), "messages": len(f.notifications),
            "events": len(data["audit_events"]), "files": len(files)}


_SECTIONS = ("accounts", "experts", "objections", "society_mailboxes", "attachments",
             "messages", "sessions", "failed_sign_ins", "audit_events")


# --- erase -----------------------------------------------------------------------------------

def erase(conn: Connection, actor: Any, spec: str, reason: str, outbox: str | Path | None = None,
          dry_run: bool = False, finance_days: int | None = None) -> dict[str, Any]:
    """Erase every personal value of `spec`, everywhere; one audited event, no value in it.

    Steps:
    1. the approver acts (`person.erase`), never on themselves; a person erased before, a
       reason that names a value being erased, or data still held by retention (`held`) is
       refused and nothing changes;
    2. values an older release wrote into the trail in clear are sealed first (`audit.redact`
       attests the rewrite, so the chain still verifies);
    3. their keys are destroyed (`sealing.destroy`): every sealed value of theirs in the trail
       reads ERASED from now on;
    4. their rows are cleared: account (e-mail, password; disabled), sessions, failed sign-ins,
       the expert's registry row, their objections' name/contact/evidence, their uploads,
       mailboxes, messages (unsent ones are failed), and the file channel's copies in `outbox`;
    5. `erasures` and the `person_erase` event record what was done, counts only.
    """
    actor = permissions.require(conn, actor, "person.erase")
    kind, ident = parse(spec)
    gone = erased(conn, f"{kind}:{ident}")
    if gone is not None:
        raise PersonError(f"{kind}:{ident} was erased already, on {gone.erased_at:%Y-%m-%d} by "
                          f"{gone.erased_by} (event {gone.seq}); nothing was changed")
    reason = reason.strip()
    if not reason:
        raise PersonError("an erasure needs a reason (--reason), for the trail")
    f = footprint(conn, spec)
    if {actor.name, actor.by} & set(f.accounts):
        raise permissions.Refused(f"{actor.label} may not erase {f.person}: nobody erases "
                                  "their own data or audit events; another approver must")
    named = [v for v in _values(conn, f) if v and v in reason]
    if named:
        raise PersonError("the reason names a value being erased; say it without the "
                          "person's name, phone or e-mail (it stays in the trail)")
    holds = held(conn, f, finance_days)
    if holds:
        raise PersonError(f"{f.person} cannot be erased yet: " + "; ".join(holds)
                          + "; nothing was changed")
    counts = _counts(conn, f)
    if dry_run:
        return {"person": f.person, "subjects": f.subjects, "dry_run": True, **counts}
    key = audit.chain_key(conn)
    if conn.dialect.name == "sqlite":      # freed pages zeroed too (overflow pages of files)
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
    redacted = audit.seal_clear(conn, key, set(f.subjects))
    counts["trail_keys"] = sealing.destroy(conn, f.subjects)
    counts["files"] = _clear_rows(conn, f, outbox)
    seq = audit.record(conn, actor, [audit.Event("person_erase", payload={
        "person": f.person, "subjects": f.subjects, "reason": reason, "counts": counts,
        "redacted": redacted})])[0]
    conn.execute(Erasure.__table__.insert().values(
        person=f.person, subjects=f.subjects, erased_at=clock.now(), erased_by=actor.label,
        reason=reason, seq=seq))
    return {"person": f.person, "subjects": f.subjects, "event": seq,
            "sealed_now": len(redacted), **counts}


def _values(conn: Connection, f: Footprint) -> list[str]:
    """The person's own values (name, contact, e-mail): the reason must not repeat them."""
    out = set(f.emails)
    for o in conn.execute(select(Objection.filed_by, Objection.contact)
                          .where(Objection.id.in_(f.objections))):
        out |= {o.filed_by, o.contact}
    for e in conn.execute(select(Expert.name, Expert.name_en).where(Expert.id.in_(f.experts))):
        out |= {e.name, e.name_en}
    return sorted(v for v in out if v and len(v) > 1)


def _counts(conn: Connection, f: Footprint) -> dict[str, int]:
    def n(model: Any, where: Any) -> int:
        return conn.execute(select(func.count()).select_from(model).where(where)).scalar_one()

    return {"accounts": len(f.accounts), "experts": len(f.experts),
            "objections": len(f.objections), "attachments": len(f.attachments),
            "mailboxes": len(f.societies), "messages": len(f.notifications),
            "sessions": n(AccountToken, AccountToken.account.in_(f.accounts)),
            "failed_sign_ins": n(LoginAttempt, LoginAttempt.account.in_(f.accounts))}


def _clear_rows(conn: Connection, f: Footprint, outbox: str | Path | None) -> int:
    """Step 4 of `erase`; returns how many of the file channel's copies were removed."""
    now = clock.now()
    if f.accounts:
        conn.execute(update(Account).where(Account.name.in_(f.accounts)).values(
            email=None, password_hash=None, totp=None, totp_step=None, recovery_codes=None,
            disabled_at=func.coalesce(Account.disabled_at, now)))
        conn.execute(delete(AccountToken).where(AccountToken.account.in_(f.accounts)))
        conn.execute(delete(AccountLink).where(AccountLink.account.in_(f.accounts)))
        conn.execute(delete(LoginAttempt).where(LoginAttempt.account.in_(f.accounts)))
    if f.experts:
        conn.execute(update(Expert).where(Expert.id.in_(f.experts)).values(
            name=ERASED, name_en="", email="", institution="", conflict_institutions=[]))
    if f.objections:
        conn.execute(update(Objection).where(Objection.id.in_(f.objections)).values(
            filed_by=ERASED, contact="", evidence="", evidence_data=None))
    if f.attachments:
        conn.execute(update(Attachment).where(Attachment.id.in_(f.attachments)).values(
            filename=ERASED, data=b""))
    if f.societies:
        conn.execute(update(Society).where(Society.id.in_(f.societies)).values(email=""))
    removed = 0
    if f.notifications:
        from notifications.channels import file_name

        keys = list(conn.execute(select(Notification.dedupe_key)
                                 .where(Notification.id.in_(f.notifications))).scalars())
        conn.execute(update(Notification).where(
            Notification.id.in_(f.notifications),
            Notification.status.in_(("pending", "held", "sending"))).values(
            status="failed", last_error="the recipient's data was erased (person erase)"))
        conn.execute(update(Notification).where(Notification.id.in_(f.notifications)).values(
            recipient="", context={}, edited=None))
        if outbox is not None:
            for k in keys:
                copy = Path(outbox) / file_name(k)
                if copy.exists():
                    copy.unlink()
                    removed += 1
    return removed


# --- commands: starfund person ... -----------------------------------------------------------

@click.group("person")
def person_group() -> None:
    """A person's data under PIPL (个人信息): export it, or erase it everywhere."""


@person_group.command("export")
@click.argument("spec", metavar="PERSON")
@click.option("--out", "out", type=OutputPath(), required=True,
              help="The zip to write (person.json, person.html, files/).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="The language of person.html.")
@json_option
@common
def person_export(env: Env, spec: str, out: str, lang: str) -> None:
    """Export everything held about PERSON (account:NAME, expert:ID or objector:N) as a zip.

    \b
    Example:  starfund person export account:s01-contact --out s01-contact.zip
    """
    buffer = io.BytesIO()
    with env.engine.begin() as conn:
        r = export(conn, env.actor, spec, buffer, lang)
        Path(out).write_bytes(buffer.getvalue())
    if env.as_json:
        return emit_json({**r, "file": out})
    echo(f"{r['person']}: {r['accounts']} account(s), {r['objections']} objection(s), "
         f"{r['attachments']} upload(s), {r['messages']} message(s), {r['events']} audit "
         f"event(s), {r['files']} file(s) written to {out}")


@person_group.command("erase")
@click.argument("spec", metavar="PERSON")
@click.option("--reason", required=True, help="Why (e.g. the request's reference); audited.")
@click.option("--dry-run", is_flag=True, help="Say what would be erased; change nothing.")
@setting_option("--outbox", setting="outbox", default="outbox", show_default=True,
                type=OutputPath(folder=True),
                help="The file channel's folder, whose copies of their messages go too "
                     "[env STARFUND_OUTBOX].")
@json_option
@common
def person_erase(env: Env, spec: str, reason: str, dry_run: bool, outbox: str) -> None:
    """Erase every personal value of PERSON everywhere: rows, uploads, messages, and their
    sealed values in the audit trail (whose chain still verifies). Refused, with the date,
    while a retention rule holds their data.

    \b
    Example:  starfund person erase account:s01-contact --reason "request 2026-07"
    """
    with env.engine.begin() as conn:
        r = erase(conn, env.actor, spec, reason, outbox, dry_run=dry_run,
                  finance_days=env.settings.get("retention_finance_days") if env.settings
                  else None)
    if not dry_run:
        from lifecycle.core import db

        db.scrub(env.engine)
    if env.as_json:
        return emit_json(r)
    what = ", ".join(f"{k} {v}" for k, v in r.items()
                     if isinstance(v, int) and not isinstance(v, bool) and k != "event")
    if dry_run:
        echo(f"{r['person']} would be erased: {what} (dry run: nothing changed)")
    else:
        echo(f"{r['person']} erased (event {r['event']}): {what}")
