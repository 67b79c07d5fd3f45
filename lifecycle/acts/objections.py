"""Objections (异议) during the public notice: named, written, with evidence, decided by an
administrator.

Filing and resolving move the application through `engine.advance` (triggers
`object`, `dismiss_objection`, `uphold_objection`), with the objection row
written in the same transaction (the caller's: the call is locked, the objection
written, then the application advanced), so the state change, its cause and
their audit events commit together or not at all.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, insert, select, update

from lifecycle.acts.reports import known
from lifecycle.console import (
    ROW_ID,
    Env,
    SafePath,
    common,
    echo,
    emit_json,
    json_option,
    table,
)
from lifecycle.core import audit, clock, uploads
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Application, Deadline, Objection
from lifecycle.engine import engine, permissions
from states import award
from states.roles import STAFF

MAX_EVIDENCE = 20 * 1024 * 1024
ANONYMOUS = {"anonymous", "anon", "匿名", "无名", "none", "n/a", "-"}


class ObjectionError(engine.EngineError):
    pass


def notice_end(conn: Connection, call_id: str, app_id: str | None = None) -> datetime | None:
    """When the public notice ends: the application's own (from when it entered the notice),
    else the call's (its `notice_ends` deadline); None if it has not opened."""
    if app_id is not None:
        opened = award.opened_at(conn, call_id, [app_id]).get(app_id)
        if opened is not None:
            return engine.load_call(conn, call_id).notice_end(opened)
    return conn.execute(select(Deadline.due_at)
                        .where(Deadline.key == f"{call_id}:notice_ends")).scalar()


def _app(conn: Connection, app_id: str) -> Any:
    row = conn.execute(select(Application.id, Application.call_id, Application.state)
                       .where(Application.id == app_id)).first()
    if row is None:
        raise ObjectionError(f"no application {app_id!r}")
    return row


def file(conn: Connection, app_id: str, by: str, contact: str, reason: str, actor: str,
         evidence: str | Path | tuple[str, bytes] | None = None) -> dict[str, Any]:
    """File a named objection against an application in public notice; it cannot be awarded
    until the objection is resolved. Runs in the caller's transaction (`conn`). `evidence` is
    a file, or (name, bytes) as the portal receives an upload (checked by content)."""
    actor = permissions.require(conn, actor, "objection.file")
    by, contact, reason = by.strip(), contact.strip(), reason.strip()
    if not by or by.lower() in ANONYMOUS:
        raise ObjectionError("objections must be named: give the objector's name with --by "
                             "(anonymous objections are not accepted)")
    if not contact:
        raise ObjectionError("objections must give a way to reach the objector (--contact)")
    if not reason:
        raise ObjectionError("an objection must say what is objected to (--reason)")
    data, described = None, ""
    if isinstance(evidence, tuple):
        name, data = uploads.safe_name(evidence[0]), evidence[1]
        try:
            uploads.check(name, data, ("pdf", "docx", "xlsx", "png", "jpeg"), MAX_EVIDENCE)
        except BadValue as e:
            raise ObjectionError(str(e)) from None
        described = f"{name} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})"
    elif evidence is not None:
        path = Path(evidence)
        if not path.is_file():
            raise ObjectionError(f"{path}: no such evidence file")
        if path.stat().st_size > MAX_EVIDENCE:
            raise ObjectionError(f"{path}: evidence larger than {MAX_EVIDENCE // 2**20} MB")
        data = path.read_bytes()
        described = f"{path.name} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})"
    now = clock.now()
    app = _app(conn, app_id)
    ends = notice_end(conn, app.call_id, app_id)
    if app.state not in award.LISTED:
        raise ObjectionError(f"{app_id} is {app.state}; objections are filed against applications "
                             "in public notice (公示)")
    if ends is None or now >= ends:
        raise ObjectionError(f"the public notice of {app.call_id} ended at "
                             f"{ends:%Y-%m-%d %H:%M}; objections are no longer accepted"
                             if ends else f"the public notice of {app.call_id} has not opened")
    options: dict[str, Any] = {}  # the objection id only: the name stays sealed in its event

    def write(conn: Connection) -> None:
        oid = conn.execute(insert(Objection).values(
            call_id=app.call_id, application_id=app_id, filed_by=by, contact=contact,
            reason=reason, evidence=described, evidence_data=data, status="open", filed_at=now,
            resolution="", filed_account=None if actor.holds(STAFF) else actor.name,
        ).returning(Objection.id)).scalar_one()
        options["objection"] = oid
        audit.record(conn, actor, [audit.Event("objection_file", app.call_id, app_id, payload={
            "objection": oid, "by": by, "contact": contact, "reason": reason,
            "evidence": described})], at=now)

    engine.load_call(conn, app.call_id, lock=True)  # the call first, then the objection and move
    write(conn)
    report = engine.advance(conn, app.call_id, "object", actor, only=[app_id], options=options)
    return {"objection": options["objection"], "application": app_id,
            "state": award.OBJECTION_RAISED if report.moved_total else app.state,
            "notice_ends": ends.isoformat(sep=" "), "evidence": described}


def resolve(conn: Connection, objection_id: int, uphold: bool, reason: str,
            actor: str) -> dict[str, Any]:
    """Uphold or dismiss an open objection; the application moves on when none is left open.
    Runs in the caller's transaction (`conn`)."""
    actor = permissions.require(conn, actor, "objection.resolve")
    reason = reason.strip()
    if not reason:
        raise ObjectionError("a resolution needs a reason (--reason)")
    obj = conn.execute(select(Objection.__table__).where(Objection.id == objection_id)).first()
    if obj is None:
        raise ObjectionError(f"no objection {objection_id}")
    others = conn.execute(select(Objection.id).where(
        Objection.application_id == obj.application_id, Objection.status == "open",
        Objection.id != objection_id)).scalars().all()
    if obj.status != "open":
        raise ObjectionError(f"objection {objection_id} was already {obj.status}: "
                             f"{obj.resolution}")
    now = clock.now()
    status = "upheld" if uphold else "dismissed"

    def write(conn: Connection) -> None:
        done = conn.execute(update(Objection).where(Objection.id == objection_id,
                                                    Objection.status == "open")
                            .values(status=status, resolved_at=now, resolution=reason)).rowcount
        if done != 1:
            raise engine.ConflictError(f"objection {objection_id} was resolved by someone else "
                                       "just now; nothing was written")
        events = [audit.Event("objection_resolve", obj.call_id, obj.application_id, payload={
            "objection": objection_id, "decision": status, "reason": reason})]
        if uphold and others:
            conn.execute(update(Objection).where(Objection.id.in_(others))
                         .values(status="moot", resolved_at=now,
                                 resolution=f"moot: objection {objection_id} was upheld"))
            events += [audit.Event("objection_resolve", obj.call_id, obj.application_id,
                                   payload={"objection": o, "decision": "moot",
                                            "reason": f"objection {objection_id} was upheld"})
                       for o in others]
        audit.record(conn, actor, events, at=now)

    if not uphold and others:
        write(conn)
        return {"objection": objection_id, "decision": status, "application": obj.application_id,
                "moved": None, "still_open": list(others)}
    trigger = "uphold_objection" if uphold else "dismiss_objection"
    engine.load_call(conn, obj.call_id, lock=True)  # the call first, then the decision and move
    write(conn)
    report = engine.advance(conn, obj.call_id, trigger, actor, only=[obj.application_id],
                            options={"objection": objection_id, "reason": reason})
    moved = next(iter(report.moved), (None, None))[1]
    return {"objection": objection_id, "decision": status, "application": obj.application_id,
            "moved": moved, "still_open": []}


HIDDEN = "仅审定人员可见 approvers only"
"""What stands in for an objection's contact where the reader may not see it."""


def may_see_contact(conn: Connection, actor: Actor | str) -> bool:
    """Whether `actor` may see how to reach an objector (`objection.contact`: the approvers who
    resolve objections). The objector's name is never hidden: objections are named."""
    try:
        permissions.require(conn, actor, "objection.contact")
    except Refused:
        return False
    return True


def listing(conn: Connection, call_id: str | None = None, status: str | None = None,
            reader: Actor | str | None = None) -> list[dict[str, Any]]:
    """Objections, newest last, optionally of one call or status; the contact replaced by
    HIDDEN unless `reader` may see it (`may_see_contact`)."""
    stmt = select(Objection.id, Objection.call_id, Objection.application_id, Objection.filed_by,
                  Objection.contact, Objection.reason, Objection.evidence, Objection.status,
                  Objection.filed_at, Objection.resolved_at, Objection.resolution
                  ).order_by(Objection.id)
    if call_id:
        stmt = stmt.where(Objection.call_id == call_id)
    if status:
        stmt = stmt.where(Objection.status == status)
    shown = reader is not None and may_see_contact(conn, reader)
    return [{**r._mapping, "filed_at": r.filed_at.isoformat(sep=" "),
             "resolved_at": r.resolved_at.isoformat(sep=" ") if r.resolved_at else None,
             "contact": r.contact if shown else HIDDEN}
            for r in conn.execute(stmt)]


# --- commands: starfund objection ... --------------------------------------------------------

@click.group("objection")
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
    with env.engine.begin() as conn:
        r = file(conn, app_id, by, contact, reason, env.actor, evidence)
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
    if decision is None:
        raise click.UsageError("say --uphold or --dismiss")
    with env.engine.begin() as conn:
        r = resolve(conn, objection_id, decision == "uphold", reason, env.actor)
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

    The objector is named; the contact (in --json) is shown to approvers only, who resolve
    objections (objection.contact), and hidden from every other role.

    \b
    Example:  starfund objection list 2025-project --status open
    """
    with env.engine.connect() as conn:
        known(conn, call_id)
        rows = listing(conn, call_id, status, env.actor)
    if env.as_json:
        return emit_json(rows)
    table("objections", ["id", "application", "by", "filed", "status", "reason", "resolution"],
          [[r["id"], r["application_id"], r["filed_by"], r["filed_at"], r["status"], r["reason"],
            r["resolution"]] for r in rows])
