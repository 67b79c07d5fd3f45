"""Money of grants and rewards as administrative acts: paying released instalments, and the
money summaries for reports and `starfund show`.

The plan and what the lifecycle's effects write on it (release, cut, cancel) are
`lifecycle.rules.payments`; paying is `starfund payments pay`, audited.
"""
from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Connection, func, select, update

from lifecycle.core import audit, clock, engine, permissions
from lifecycle.core.console import Env, common, echo, emit_json, json_option, table
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Application, Payment

_pay = Payment.__table__


class PaymentError(BadValue):
    pass


def pay(conn: Connection, call_id: str, actor: str, only: list[str] | None = None) -> dict:
    """Record as paid every released instalment of the call whose date has come."""
    actor = permissions.require(conn, actor, "payment.pay", engine.load_call(conn, call_id))
    now = clock.now()
    stmt = select(_pay).where(_pay.c.call_id == call_id, _pay.c.status == "due",
                              _pay.c.due_at <= now).order_by(_pay.c.application_id, _pay.c.seq)
    if only:
        stmt = stmt.where(_pay.c.application_id.in_(only))
    rows = conn.execute(stmt).all()
    if not rows:
        raise PaymentError(f"no instalment of {call_id} is due for payment on {now:%Y-%m-%d}")
    conn.execute(update(_pay).where(_pay.c.id.in_([r.id for r in rows]))
                 .values(status="paid", paid_at=now))
    audit.record(conn, actor, [audit.Event("payment_paid", call_id, r.application_id, payload={
        "seq": r.seq, "label": r.label, "amount": r.amount}) for r in rows], at=now)
    return {"instalments": len(rows), "amount": sum(r.amount for r in rows),
            "applications": len({r.application_id for r in rows})}


def money(conn: Connection, call_id: str | None = None,
          application_id: str | None = None) -> dict[str, int]:
    """Planned, due (released, unpaid), paid, withheld (cut or cancelled) and to-recover amounts."""
    stmt = select(_pay.c.status, func.coalesce(func.sum(_pay.c.amount), 0),
                  func.coalesce(func.sum(_pay.c.original_amount), 0)).group_by(_pay.c.status)
    rec = select(func.coalesce(func.sum(Application.amount_to_recover), 0))
    if call_id:
        stmt, rec = stmt.where(_pay.c.call_id == call_id), rec.where(Application.call_id == call_id)
    if application_id:
        stmt = stmt.where(_pay.c.application_id == application_id)
        rec = rec.where(Application.id == application_id)
    out = {"planned": 0, "due": 0, "paid": 0, "withheld": 0, "to_recover": 0}
    for status, amount, original in conn.execute(stmt):
        if status == "cancelled":
            out["withheld"] += int(original)
        else:
            out[status] += int(amount)
            out["withheld"] += int(original) - int(amount)
    out["to_recover"] = int(conn.execute(rec).scalar() or 0)
    return out


def instalments(conn: Connection, application_id: str) -> list[dict[str, Any]]:
    """One application's instalments, for `starfund show`."""
    return [{"seq": p.seq, "label": p.label, "release": p.release, "planned": p.original_amount,
             "amount": p.amount, "status": p.status,
             "due_at": p.due_at.isoformat(sep=" ") if p.due_at else None,
             "paid_at": p.paid_at.isoformat(sep=" ") if p.paid_at else None, "note": p.note}
            for p in conn.execute(select(_pay).where(_pay.c.application_id == application_id)
                                  .order_by(_pay.c.seq))]


# --- commands: starfund payments ... ---------------------------------------------------------

@click.group("payments")
def payments_group() -> None:
    """Grant and reward instalments: list them, record payments."""


@payments_group.command("pay")
@click.argument("call_id", metavar="CALL")
@click.option("--only", multiple=True, metavar="ID", help="Only these applications (repeatable).")
@common
def payments_pay(env: Env, call_id: str, only: tuple[str, ...]) -> None:
    """Record as paid every released instalment of CALL whose date has come.

    \b
    Example:  starfund payments pay 2025-project
    """
    with env.engine.begin() as conn:
        r = pay(conn, call_id, env.actor, list(only) or None)
    echo(f"paid {r['instalments']} instalments to {r['applications']} applications: "
         f"{r['amount']:,} yuan")


@payments_group.command("list")
@click.argument("call_id", metavar="CALL")
@json_option
@common
def payments_list(env: Env, call_id: str) -> None:
    """Money of CALL: planned, due, paid, withheld and to recover, per state of instalment.

    \b
    Example:  starfund payments list 2025-project --json
    """
    with env.engine.connect() as conn:
        engine.load_call(conn, call_id)
        m = money(conn, call_id)
    if env.as_json:
        return emit_json(m)
    table(f"{call_id}: money (yuan)", ["planned", "due", "paid", "withheld", "to recover"],
          [[f"{m[k]:,}" for k in ("planned", "due", "paid", "withheld", "to_recover")]])
