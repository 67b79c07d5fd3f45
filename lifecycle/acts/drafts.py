"""A society's declaration written online: one draft, its fields and its files.

The portal's declaration form and `starfund application attach` both come here, so
the checks are the ones the import makes (the declaration file's row model), the
window is the call's, and every write is audited under the account that made it.
Submitting is not here: it is the workflow's `submit` move, through the engine.
"""
from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, func, insert, select, update

from lifecycle.core import audit, clock, uploads
from lifecycle.core.accounts import Actor
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import Application, Attachment, Society
from lifecycle.core.tabular import ID_LIMIT, Int, Row, TextList, cell
from lifecycle.engine import engine, permissions
from states.names import DRAFT
from states.roles import SOCIETY


class DeclarationRow(Row):
    """One declaration (申报) of the declaration file: a draft of the call."""

    id: str = cell("", limit=ID_LIMIT, about="generated as CALL-00001 when empty")
    society_id: str = cell(limit=ID_LIMIT)
    category: str = cell(limit=ID_LIMIT)
    title: str = cell(limit=300)
    title_en: str = cell("", limit=300)
    discipline: str = cell("", limit=100)
    requested_amount: Int = cell()
    summary: str = cell("", limit=5000, multiline=True)
    excluded_experts: TextList = cell(list, multiline=True)
    continues: str = cell("", limit=ID_LIMIT, about="the earlier project this one continues")


EDITABLE = ("category", "title", "title_en", "discipline", "requested_amount")
"""The columns a draft's form may change; everything else the form gives goes in `fields`."""


def check_window(call: CallConfig) -> None:
    """Refuse a declaration written outside the call's window (BadValue naming it)."""
    now, cal = clock.now(), call.calendar
    if now < cal.declaration_opens:
        raise BadValue(f"the declaration window of {call.id} opens at "
                       f"{cal.declaration_opens:%Y-%m-%d %H:%M}")
    if now > cal.declaration_closes:
        raise BadValue(f"the declaration window of {call.id} closed at "
                       f"{cal.declaration_closes:%Y-%m-%d %H:%M}; drafts can no longer change")


def _checked(call: CallConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The form's values checked by the declaration file's row model and the call."""
    given = {k: v for k, v in values.items() if k in DeclarationRow.model_fields}
    try:
        row = DeclarationRow.model_validate({"society_id": "-", **given}).model_dump()
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "form"
        if field == "requested_amount":  # not Python's "invalid literal for int()"
            raise BadValue("requested_amount: must be a positive whole number of yuan") from None
        raise BadValue(f"{field}: {first['msg']}") from None
    if call.category(row["category"]) is None:
        raise BadValue(f"category: {row['category']!r} is not a category of {call.id}")
    if row["requested_amount"] is None or row["requested_amount"] <= 0:
        raise BadValue("requested_amount: must be a positive whole number of yuan")
    extra = {f: str(values.get(f, "")).strip() for f in call.eligibility.required_fields
             if f not in DeclarationRow.model_fields}
    row["fields"] = {k: v for k, v in {"summary": row["summary"], **extra}.items() if v}
    return row


def _society(conn: Connection, actor: Actor, society_id: str | None) -> str:
    society = actor.society_id if actor.holds((SOCIETY,)) and actor.society_id else society_id
    if not society:
        raise BadValue("society_id: say which society the declaration is for")
    permissions.check_scope(actor, society_id=society)
    if conn.execute(select(Society.id).where(Society.id == society)).first() is None:
        raise NotFound(f"no society {society!r}")
    return society


def _next_id(conn: Connection, call_id: str) -> str:
    """CALL-NNNNN after the call's count, as the import numbers them (past any id a file gave)."""
    n = (conn.execute(select(func.count()).select_from(Application)
                      .where(Application.call_id == call_id)).scalar() or 0) + 1
    while conn.execute(select(Application.id)
                       .where(Application.id == f"{call_id}-{n:05d}")).first() is not None:
        n += 1
    return f"{call_id}-{n:05d}"


def declare(conn: Connection, call_id: str, values: dict[str, Any], actor: Actor | str,
            society_id: str | None = None) -> str:
    """A new draft of the society's declaration in the call; returns its id."""
    call = engine.load_call(conn, call_id, lock=True)
    actor = permissions.require(conn, actor, "declaration.edit", call)
    society = _society(conn, actor, society_id)
    check_window(call)
    row = _checked(call, values)
    klass = conn.execute(select(Society.society_class).where(Society.id == society)).scalar()
    app_id = _next_id(conn, call_id)
    record = {k: row[k] for k in EDITABLE} | {
        "id": app_id, "society_id": society, "society_class": klass or "",
        "excluded_experts": [], "fields": row["fields"]}
    engine.create_applications(conn, call, [record], actor)
    audit.record(conn, actor, [audit.Event("declaration_online", call_id, app_id, payload={
        k: record[k] for k in (*EDITABLE, "fields")})])
    return app_id


def _draft(conn: Connection, app_id: str, actor: Actor | str) -> tuple[Any, CallConfig, Actor]:
    app = conn.execute(select(Application.__table__).where(Application.id == app_id)).first()
    if app is None:
        raise NotFound(f"no application {app_id!r}")
    call = engine.load_call(conn, app.call_id)
    actor = permissions.require(conn, actor, "declaration.edit", call)
    permissions.check_scope(actor, society_id=app.society_id)
    if app.state != DRAFT:
        raise BadValue(f"{app_id} is {app.state}: only a draft can change")
    check_window(call)
    return app, call, actor


def edit(conn: Connection, app_id: str, values: dict[str, Any], actor: Actor | str) -> list[str]:
    """Change a draft's fields; returns the names of those that changed (audited old -> new)."""
    app, call, actor = _draft(conn, app_id, actor)
    row = _checked(call, values)
    new = {k: row[k] for k in EDITABLE} | {"fields": {**(app.fields or {}), **row["fields"]}}
    if not row["summary"]:
        new["fields"].pop("summary", None)
    old = {k: getattr(app, k) for k in new}
    changed = [k for k in new if new[k] != old[k]]
    if not changed:
        return []
    conn.execute(update(Application).where(Application.id == app_id)
                 .values(**{k: new[k] for k in changed}, version=Application.version + 1,
                         updated_at=clock.now()))
    audit.record(conn, actor, [audit.Event("declaration_edit", app.call_id, app_id, payload={
        "changed": {k: {"old": old[k], "new": new[k]} for k in changed}})])
    return changed


def attach(conn: Connection, app_id: str, kind: str, filename: str, data: bytes,
           actor: Actor | str) -> dict[str, Any]:
    """Store a file of the draft (checked by content); it replaces the kind's earlier file."""
    app, call, actor = _draft(conn, app_id, actor)
    wanted = call.eligibility.attachment(kind)
    if wanted is None:
        raise BadValue(f"kind: {kind!r} is not a file {call.id} asks for "
                       f"({', '.join(a.id for a in call.eligibility.attachments) or 'none'})")
    name = uploads.safe_name(filename)
    found = uploads.check(name, data, wanted.types)
    digest = hashlib.sha256(data).hexdigest()
    before = conn.execute(select(Attachment.id, Attachment.sha256).where(
        Attachment.application_id == app_id, Attachment.kind == kind, Attachment.current)).first()
    if before is not None:
        conn.execute(update(Attachment).where(Attachment.id == before.id).values(current=False))
    new_id = conn.execute(insert(Attachment).values(
        call_id=app.call_id, application_id=app_id, kind=kind, filename=name,
        content_type=found.content_type, size=len(data), sha256=digest, data=data,
        uploaded_by=actor.label, uploaded_at=clock.now(), current=True)
        .returning(Attachment.id)).scalar_one()
    audit.record(conn, actor, [audit.Event("attachment", app.call_id, app_id, payload={
        "kind": kind, "file": name, "type": found.name, "bytes": len(data), "sha256": digest,
        "replaces": before.sha256 if before else None})])
    return {"id": new_id, "application": app_id, "kind": kind, "file": name,
            "type": found.name, "bytes": len(data), "sha256": digest}


def attachments(conn: Connection, app_id: str) -> list[dict[str, Any]]:
    """The application's current files (without their bytes), in upload order."""
    rows = conn.execute(select(Attachment.id, Attachment.kind, Attachment.filename,
                               Attachment.content_type, Attachment.size, Attachment.sha256,
                               Attachment.uploaded_by, Attachment.uploaded_at)
                        .where(Attachment.application_id == app_id, Attachment.current)
                        .order_by(Attachment.id))
    return [dict(r._mapping) for r in rows]


def attachment(conn: Connection, attachment_id: int) -> Any:
    """One stored file with its bytes (the caller has checked the reader may see its application)."""
    row = conn.execute(select(Attachment.__table__).where(Attachment.id == attachment_id)).first()
    if row is None:
        raise NotFound(f"no attachment {attachment_id}")
    return row
