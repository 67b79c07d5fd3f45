"""The payment plan of grants and rewards and the writes the lifecycle's effects make on it:
plan, release, cut and cancel instalments.

Instalment rows are written by the effects of engine moves (fund, decide_outcome,
complete, a star award), in the transaction of the move, each audited. Amounts
are whole yuan; a split's rounding goes to the last instalment. Paying released
instalments and the money summaries are `lifecycle.acts.payments`.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from lifecycle.core import audit
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application, Payment, Recovery

_pay = Payment.__table__
OPEN = ("planned", "due")
"""Instalment statuses not yet paid nor cancelled: what a cut or a cancellation touches."""


def split(total: int, percents: list[float]) -> list[int]:
    """`total` split by percents; the last part takes the rounding so the parts add up."""
    parts = [int(round(total * p / 100)) for p in percents[:-1]]
    return parts + [total - sum(parts)]


def plan(conn: Connection, call: CallConfig, apps: list[tuple[str, int]], now: datetime,
         actor: str, label: str | None = None) -> None:
    """Write the call's payment plan for (application, amount) pairs; `award` parts are due now.

    `label` names a plan of one instalment (e.g. a star reward) instead of the default label.
    """
    instalments = call.payments.plan()
    if label and len(instalments) == 1:
        instalments = [instalments[0].model_copy(update={"label": label})]
    rows, events = [], []
    for app_id, amount in apps:
        parts = split(amount, [i.percent for i in instalments])
        for seq, (inst, part) in enumerate(zip(instalments, parts), start=1):
            released = inst.release == "award"
            rows.append({"call_id": call.id, "application_id": app_id, "seq": seq,
                         "label": inst.label, "release": inst.release, "percent": inst.percent,
                         "original_amount": part, "amount": part,
                         "status": "due" if released else "planned",
                         "due_at": inst.due or (now if released else None),
                         "released_at": now if released else None, "paid_at": None, "note": ""})
        events.append(audit.Event("payment_plan", call.id, app_id, payload={
            "amount": amount, "instalments": [
                {"seq": s, "label": i.label, "release": i.release, "amount": p}
                for s, (i, p) in enumerate(zip(instalments, parts), start=1)]}))
    if rows:
        conn.execute(insert(_pay), rows)
    audit.record(conn, actor, events, at=now)


def open_payments(conn: Connection, call_id: str, app_ids: Iterable[str]) -> dict[str, list[Any]]:
    """Every instalment of these applications, by application, in order (one query).

    A chunk of an advance (up to a few thousand) is looked up by application (the
    (application_id, seq) index); a whole batch reads the call's instalments once.
    """
    wanted = set(app_ids)
    out: dict[str, list[Any]] = defaultdict(list)
    stmt = select(_pay).where(_pay.c.application_id.in_(sorted(wanted))) \
        if len(wanted) <= _BY_APPLICATION else select(_pay).where(_pay.c.call_id == call_id)
    for r in conn.execute(stmt.order_by(_pay.c.application_id, _pay.c.seq)):
        if r.application_id in wanted and r.call_id == call_id:
            out[r.application_id].append(r)
    return out


_BY_APPLICATION = 5000


def release(conn: Connection, call_id: str, keys: dict[str, str], now: datetime,
            actor: str) -> int:
    """Release the planned instalments whose condition is met: application -> release key."""
    by_app = open_payments(conn, call_id, keys)
    rows, events = [], []
    for app_id, key in keys.items():
        for p in by_app.get(app_id, []):
            if p.status == "planned" and p.release == key:
                rows.append({"b_id": p.id, "due_at": p.due_at or now})
                events.append(audit.Event("payment_release", call_id, app_id, payload={
                    "seq": p.seq, "label": p.label, "amount": p.amount, "condition": key}))
    if rows:
        conn.execute(update(_pay).where(_pay.c.id == bindparam("b_id"))
                     .values(status="due", released_at=now, due_at=bindparam("due_at")), rows)
    audit.record(conn, actor, events, at=now)
    return len(rows)


def cut(conn: Connection, call_id: str, cuts: dict[str, float], now: datetime,
        actor: str) -> dict[str, tuple[int, int]]:
    """Cut every unpaid instalment of each application by its percent; returns old, new totals."""
    by_app = open_payments(conn, call_id, cuts)
    rows, events, out = [], [], {}
    for app_id, pct in cuts.items():
        planned = [p for p in by_app.get(app_id, []) if p.status in OPEN]
        old = sum(p.amount for p in planned)
        new = old - int(round(old * pct / 100))
        parts = split(new, [p.amount * 100 / old for p in planned]) if old else []
        for p, part in zip(planned, parts):
            rows.append({"b_id": p.id, "amount": part,
                         "note": f"cut {pct:g}%: {p.amount} -> {part}"})
        out[app_id] = (old, new)
        events.append(audit.Event("payment_cut", call_id, app_id, payload={
            "percent": pct, "old": old, "new": new,
            "instalments": [{"seq": p.seq, "old": p.amount, "new": part}
                            for p, part in zip(planned, parts)]}))
    if rows:
        conn.execute(update(_pay).where(_pay.c.id == bindparam("b_id"))
                     .values(amount=bindparam("amount"), note=bindparam("note")), rows)
    audit.record(conn, actor, events, at=now)
    return out


def cancel(conn: Connection, call_id: str, reasons: dict[str, str], now: datetime,
           actor: str) -> None:
    """Cancel every unpaid instalment of these applications (a terminated project)."""
    by_app = open_payments(conn, call_id, reasons)
    rows, events = [], []
    for app_id, why in reasons.items():
        gone = [p for p in by_app.get(app_id, []) if p.status in OPEN]
        rows += [{"b_id": p.id, "note": why} for p in gone]
        events.append(audit.Event("payment_cancel", call_id, app_id, payload={
            "reason": why, "cancelled": sum(p.amount for p in gone),
            "instalments": [{"seq": p.seq, "amount": p.amount, "was": p.status} for p in gone]}))
    if rows:
        conn.execute(update(_pay).where(_pay.c.id == bindparam("b_id"))
                     .values(status="cancelled", note=bindparam("note")), rows)
    audit.record(conn, actor, events, at=now)


def money(conn: Connection, call_id: str | None = None,
          application_id: str | None = None) -> dict[str, int]:
    """Planned, due (released, unpaid), paid, withheld (cut or cancelled), recovered (paid back)
    and still to recover (what terminated projects owe, less what was paid back)."""
    stmt = select(_pay.c.status, func.coalesce(func.sum(_pay.c.amount), 0),
                  func.coalesce(func.sum(_pay.c.original_amount), 0)).group_by(_pay.c.status)
    rec = select(func.coalesce(func.sum(Application.amount_to_recover), 0))
    back = select(func.coalesce(func.sum(Recovery.amount), 0))
    if call_id:
        stmt, rec = stmt.where(_pay.c.call_id == call_id), rec.where(Application.call_id == call_id)
        back = back.where(Recovery.call_id == call_id)
    if application_id:
        stmt = stmt.where(_pay.c.application_id == application_id)
        rec = rec.where(Application.id == application_id)
        back = back.where(Recovery.application_id == application_id)
    out = {"planned": 0, "due": 0, "paid": 0, "withheld": 0, "recovered": 0, "to_recover": 0}
    for status, amount, original in conn.execute(stmt):
        if status == "cancelled":
            out["withheld"] += int(original)
        else:
            out[status] += int(amount)
            out["withheld"] += int(original) - int(amount)
    out["recovered"] = int(conn.execute(back).scalar() or 0)
    out["to_recover"] = int(conn.execute(rec).scalar() or 0) - out["recovered"]
    return out
