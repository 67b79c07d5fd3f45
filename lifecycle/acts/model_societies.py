"""Model societies (示范学会): the titles star calls name, and revoking one.

A star call's rule (`star.model.rules`) names model societies through the star
workflow's `name_models` move (`starfund advance STAR-CALL name_models`, after
the notice); revoking a title is the `revoke_model` move of the declaration
that earned it, with a reason, so both are audited transitions with messages.
"""
from __future__ import annotations

import click
from sqlalchemy import Connection, select

from lifecycle.acts.stars import StarError, model_table
from lifecycle.console import Env, common, emit_json, json_option, show_report, table
from lifecycle.core.models import ModelSociety, ModelStatus
from lifecycle.engine import engine


def revoke(conn: Connection, society_id: str, reason: str, actor: str) -> engine.Report:
    """Revoke a society's current model society title with a required reason (the star stays),
    in the caller's transaction (`conn`)."""
    if not (reason or "").strip():
        raise StarError("revoking a model society title needs a reason (--reason TEXT): it goes "
                        "into the audit trail")
    rec = conn.execute(select(ModelSociety.call_id, ModelSociety.application_id)
                       .where(ModelSociety.society_id == society_id,
                              ModelSociety.status == ModelStatus.ACTIVE)
                       .order_by(ModelSociety.named_at.desc())).first()
    if rec is None:
        raise StarError(f"society {society_id} holds no model society title to revoke")
    report = engine.advance(conn, rec.call_id, "revoke_model", actor, only=[rec.application_id],
                            options={"reason": reason.strip()})
    if not report.moved_total:
        raise StarError(f"model society title of {society_id} not revoked: "
                        f"{report.skipped_ids.get(rec.application_id, 'not possible now')}")
    return report


# --- commands: starfund model ... ---------------------------------------------------------------

@click.group("model")
def model_group() -> None:
    """Model societies (示范学会): the titles star calls named, revocation."""


@model_group.command("list")
@click.argument("call_id", metavar="[CALL]", required=False)
@json_option
@common
def model_list(env: Env, call_id: str | None) -> None:
    """The model society titles a star CALL named (with their status now), or every title
    valid now.

    Titles are named by `starfund advance STAR-CALL name_models` after the notice, by the
    call's `star.model.rules`.

    \b
    Example:  starfund model list 2027-star
    """
    with env.engine.connect() as conn:
        if call_id is not None:
            engine.load_call(conn, call_id)  # refuse a call that does not exist
        rows = model_table(conn, call_id)
    if env.as_json:
        return emit_json(rows)
    table(f"model societies named by {call_id}" if call_id else "model societies now",
          ["society", "name", "class", "call", "named", "valid until", "status", "rule", "note"],
          [[r["society"], r["name"], r["class"], r["call"], r["named_at"][:10],
            r["valid_until"][:10], r["status"], r["rule"], r["end_reason"]] for r in rows])


@model_group.command("revoke")
@click.argument("society_id", metavar="SOCIETY")
@click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
@json_option
@common
def model_revoke(env: Env, society_id: str, reason: str) -> None:
    """Revoke a society's model society title (an audited transition; its star stays).

    \b
    Example:  starfund model revoke S012 --reason "2027-03 audit found the 2026 report inflated"
    """
    with env.engine.begin() as conn:
        report = revoke(conn, society_id, reason, env.actor)
    show_report(env, report)
