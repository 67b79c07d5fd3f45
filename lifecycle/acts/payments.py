"""Money of grants and rewards as administrative acts: paying released instalments, and the
money summaries for reports and `starfund show`.

The plan and what the lifecycle's effects write on it (release, cut, cancel) are
`lifecycle.rules.payments`; paying is `starfund payments pay`, audited.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, func, insert, select, update

from lifecycle.console import Env, OutputPath, common, echo, emit_json, json_option, table
from lifecycle.core import audit, clock
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Application, Payment, Recovery, Society
from lifecycle.core.names import mask_account
from lifecycle.engine import engine, permissions
from lifecycle.rules.payments import money

_pay = Payment.__table__


class PaymentError(BadValue):
    pass


def pay(conn: Connection, call_id: str, actor: str, only: list[str] | None = None,
        voucher: str | None = None, dry_run: bool = False) -> dict:
    """Record as paid every released instalment of the call whose date has come (with the
    finance office's voucher number, if given); `dry_run`: say what would be paid, write
    nothing."""
    actor = permissions.require(conn, actor, "payment.pay", engine.load_call(conn, call_id))
    now = clock.now()
    stmt = (select(_pay, Society.name).join(Application, Application.id == _pay.c.application_id)
            .join(Society, Society.id == Application.society_id)
            .where(_pay.c.call_id == call_id, _pay.c.status == "due", _pay.c.due_at <= now)
            .order_by(_pay.c.application_id, _pay.c.seq))
    if only:
        stmt = stmt.where(_pay.c.application_id.in_(only))
    rows = conn.execute(stmt).all()
    if not rows:
        raise PaymentError(f"no instalment of {call_id} is due for payment on {now:%Y-%m-%d}")
    if not dry_run:
        conn.execute(update(_pay).where(_pay.c.id.in_([r.id for r in rows]))
                     .values(status="paid", paid_at=now, voucher=voucher or ""))
        audit.record(conn, actor, [audit.Event("payment_paid", call_id, r.application_id, payload={
            "seq": r.seq, "label": r.label, "amount": r.amount,
            **({"voucher": voucher} if voucher else {})}) for r in rows], at=now)
    return {"call": call_id, "dry_run": dry_run, "instalments": len(rows),
            "amount": sum(r.amount for r in rows),
            "applications": len({r.application_id for r in rows}), "voucher": voucher or "",
            "paid": [{"application": r.application_id, "society": r.name, "seq": r.seq,
                      "label": r.label, "amount": r.amount} for r in rows]}


def recover(conn: Connection, application_id: str, amount: int, voucher: str,
            actor: str) -> dict[str, Any]:
    """Record money a society paid back on a terminated project: it settles (part of) what the
    application is to recover; more than is still owed is refused."""
    app = conn.execute(select(Application.call_id, Application.amount_to_recover)
                       .where(Application.id == application_id)).first()
    if app is None:
        raise PaymentError(f"no application {application_id!r}")
    actor = permissions.require(conn, actor, "payment.recover", engine.load_call(conn, app.call_id))
    owed = money(conn, application_id=application_id)["to_recover"]
    if amount <= 0:
        raise PaymentError(f"--amount {amount}: a recovery is a positive number of yuan")
    if amount > owed:
        raise PaymentError(f"{application_id} is to recover {owed:,} yuan; {amount:,} is more "
                           "than that" if owed else f"{application_id} has nothing to recover")
    now = clock.now()
    conn.execute(insert(Recovery), [{"call_id": app.call_id, "application_id": application_id,
                                     "amount": amount, "voucher": voucher, "recovered_at": now,
                                     "recorded_by": actor.label}])
    audit.record(conn, actor, [audit.Event("payment_recovered", app.call_id, application_id,
                                           payload={"amount": amount, "voucher": voucher,
                                                    "still_to_recover": owed - amount})], at=now)
    return {"application": application_id, "recovered": amount, "voucher": voucher,
            "still_to_recover": owed - amount}


def ledger(conn: Connection, call_id: str | None = None, society_id: str | None = None,
           reveal: bool = False) -> list[dict[str, Any]]:
    """Every instalment (of a call, of a society) with its society and payee: the finance
    export's rows and a statement's lines. Account numbers in full only with `reveal`."""
    stmt = (select(_pay, Application.title, Application.society_id, Society.name,
                   Society.payee_name, Society.payee_bank, Society.payee_account)
            .join(Application, Application.id == _pay.c.application_id)
            .join(Society, Society.id == Application.society_id)
            .order_by(Application.society_id, _pay.c.call_id, _pay.c.application_id,
                      _pay.c.seq))
    if call_id:
        stmt = stmt.where(_pay.c.call_id == call_id)
    if society_id:
        stmt = stmt.where(Application.society_id == society_id)
    return [{"society_id": r.society_id, "society": r.name, "payee_name": r.payee_name,
             "payee_bank": r.payee_bank,
             "payee_account": r.payee_account if reveal else mask_account(r.payee_account),
             "call": r.call_id, "application": r.application_id, "title": r.title,
             "seq": r.seq, "instalment": r.label, "amount": r.amount,
             "due": r.due_at.date().isoformat() if r.due_at else "",
             "status": r.status, "paid": r.paid_at.date().isoformat() if r.paid_at else "",
             "voucher": r.voucher}
            for r in conn.execute(stmt)]


def export(conn: Connection, call_id: str, path: str | Path, actor: str) -> dict[str, Any]:
    """The finance office's spreadsheet of CALL: per society and instalment, payee in full."""
    from lifecycle.core.tabular import new_workbook, xlsx_append

    call = engine.load_call(conn, call_id)
    actor = permissions.require(conn, actor, "payment.export", call)
    rows = ledger(conn, call_id, reveal=True)
    wb = new_workbook()
    ws = wb.create_sheet("payments")
    xlsx_append(ws, list(EXPORT_HEADERS.values()))
    for r in rows:
        xlsx_append(ws, [r[k] for k in EXPORT_HEADERS])
    wb.save(path)
    audit.record(conn, actor, [audit.Event("payment_export", call_id, payload={
        "file": Path(path).name, "rows": len(rows)})])
    return {"call": call_id, "file": str(path), "rows": len(rows),
            "amount": sum(r["amount"] for r in rows)}


EXPORT_HEADERS = {"society_id": "学会编号 society", "society": "学会名称 name",
                  "payee_name": "户名 account name", "payee_bank": "开户行 bank",
                  "payee_account": "账号 account number", "application": "项目编号 application",
                  "title": "项目名称 title", "seq": "期次 no.", "instalment": "款项 instalment",
                  "amount": "金额 amount (yuan)", "due": "应付日期 due", "status": "状态 status",
                  "paid": "支付日期 paid", "voucher": "凭证号 voucher"}


def statement(conn: Connection, society_id: str, call_id: str | None = None) -> dict[str, Any]:
    """What a society was granted, paid, is due, had withheld and is to pay back (per call
    and application), with its payee masked: the statement it can be sent."""
    s = conn.execute(select(Society.__table__).where(Society.id == society_id)).first()
    if s is None:
        raise PaymentError(f"no society {society_id!r}")
    if call_id:
        engine.load_call(conn, call_id)
    lines = ledger(conn, call_id, society_id)
    apps = conn.execute(select(Application.id, Application.call_id, Application.title,
                               Application.granted_amount, Application.amount_to_recover)
                        .where(Application.society_id == society_id,
                               Application.id.in_({r["application"] for r in lines}))
                        .order_by(Application.call_id, Application.id)).all()
    back = dict(conn.execute(select(Recovery.application_id, func.sum(Recovery.amount))
                             .where(Recovery.application_id.in_([a.id for a in apps]))
                             .group_by(Recovery.application_id)).all())
    projects = []
    for a in apps:
        mine = [r for r in lines if r["application"] == a.id]
        projects.append({
            "application": a.id, "call": a.call_id, "title": a.title,
            "granted": a.granted_amount or 0, "instalments": mine,
            "paid": sum(r["amount"] for r in mine if r["status"] == "paid"),
            "due": sum(r["amount"] for r in mine if r["status"] == "due"),
            "planned": sum(r["amount"] for r in mine if r["status"] == "planned"),
            "recovered": int(back.get(a.id) or 0),
            "to_recover": (a.amount_to_recover or 0) - int(back.get(a.id) or 0)})
    totals = {k: sum(p[k] for p in projects)
              for k in ("granted", "paid", "due", "planned", "recovered", "to_recover")}
    return {"society": {"id": s.id, "name": s.name, "name_en": s.name_en,
                        "payee_name": s.payee_name, "payee_bank": s.payee_bank,
                        "payee_account": mask_account(s.payee_account)},
            "call": call_id, "projects": projects, "totals": totals,
            "date": clock.now().date().isoformat()}


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
    """Grant and reward instalments: list, pay, recover, export, statements."""


@payments_group.command("pay")
@click.argument("call_id", metavar="CALL")
@click.option("--only", multiple=True, metavar="ID", help="Only these applications (repeatable).")
@click.option("--voucher", metavar="NO", help="The finance office's voucher number of this payment.")
@click.option("--dry-run", is_flag=True, help="Show what would be paid; record nothing.")
@json_option
@common
def payments_pay(env: Env, call_id: str, only: tuple[str, ...], voucher: str | None,
                 dry_run: bool) -> None:
    """Record as paid every released instalment of CALL whose date has come.

    \b
    Example:  starfund payments pay 2025-project --dry-run
              starfund payments pay 2025-project --voucher 2025-0042
    """
    with env.engine.begin() as conn:
        r = pay(conn, call_id, env.actor, list(only) or None, voucher, dry_run)
    if env.as_json:
        return emit_json(r)
    echo(f"{'would pay' if dry_run else 'paid'} {r['instalments']} instalments to "
         f"{r['applications']} applications: {r['amount']:,} yuan"
         + (f" (voucher {voucher})" if voucher else "")
         + (" (dry run: nothing recorded)" if dry_run else ""))


@payments_group.command("recover")
@click.argument("application_id", metavar="APPLICATION")
@click.option("--amount", required=True, type=click.IntRange(1, 10**12),
              help="Yuan the society paid back.")
@click.option("--voucher", required=True, metavar="NO", help="The receipt's voucher number.")
@json_option
@common
def payments_recover(env: Env, application_id: str, amount: int, voucher: str) -> None:
    """Record money a society paid back on a terminated project (settles "to recover").

    \b
    Example:  starfund payments recover 2025-project-00017 --amount 10000 --voucher R-2026-003
    """
    with env.engine.begin() as conn:
        r = recover(conn, application_id, amount, voucher, env.actor)
    if env.as_json:
        return emit_json(r)
    echo(f"{application_id}: {amount:,} yuan recovered (voucher {voucher}); still to recover "
         f"{r['still_to_recover']:,}")


@payments_group.command("export")
@click.argument("call_id", metavar="CALL")
@click.option("--xlsx", "xlsx_file", required=True, type=OutputPath(), metavar="FILE",
              help="The spreadsheet to write.")
@json_option
@common
def payments_export(env: Env, call_id: str, xlsx_file: str) -> None:
    """The finance office's spreadsheet of CALL: per society and instalment the payee (account
    number in full), amount, due date, status, payment date and voucher number (finance only).

    \b
    Example:  starfund payments export 2025-project --xlsx payments.xlsx
    """
    with env.engine.begin() as conn:
        r = export(conn, call_id, xlsx_file, env.actor)
    if env.as_json:
        return emit_json(r)
    echo(f"{xlsx_file}: {r['rows']} instalments, {r['amount']:,} yuan")


@payments_group.command("statement")
@click.argument("society_id", metavar="SOCIETY")
@click.option("--call", "call_id", metavar="CALL", help="Only this call [default: every call].")
@click.option("--html", "html_file", type=OutputPath(), metavar="FILE",
              help="Write the statement as an HTML page to send.")
@click.option("--pdf", "pdf_file", type=OutputPath(), metavar="FILE",
              help="Write the statement as a PDF to send.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the page's headings.")
@json_option
@common
def payments_statement(env: Env, society_id: str, call_id: str | None, html_file: str | None,
                       pdf_file: str | None, lang: str) -> None:
    """A society's statement: granted, paid (with vouchers), due, planned, recovered and still
    to recover, per project; the account number masked.

    \b
    Example:  starfund payments statement S012 --pdf S012-statement.pdf
    """
    from lifecycle.reporting import documents

    with env.engine.connect() as conn:
        d = statement(conn, society_id, call_id)
    for path, kind in ((html_file, "html"), (pdf_file, "pdf")):
        if path:
            documents.write(documents.statement_html(d, lang), path, kind)
    if env.as_json:
        return emit_json(d)
    s, t = d["society"], d["totals"]
    echo(f"{s['id']}  {s['name']}  payee {s['payee_name'] or '-'} {s['payee_bank']} "
         f"{s['payee_account']}")
    table("statement (yuan)", ["application", "call", "granted", "paid", "due", "planned",
                               "recovered", "to recover"],
          [[p["application"], p["call"]] + [f"{p[k]:,}" for k in (
              "granted", "paid", "due", "planned", "recovered", "to_recover")]
           for p in d["projects"]])
    echo("total: " + "; ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in t.items()))
    for path in (html_file, pdf_file):
        if path:
            echo(f"written: {path}")


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
    table(f"{call_id}: money (yuan)", ["planned", "due", "paid", "withheld", "recovered",
                                       "to recover"],
          [[f"{m[k]:,}" for k in ("planned", "due", "paid", "withheld", "recovered",
                                  "to_recover")]])
