"""The people starfund serves: societies and experts, imported from spreadsheets.

Imports are all-or-nothing and stream: rows are read, checked and written a
chunk at a time (new ids inserted, known ids updated) inside the caller's one
transaction; once a problem is found nothing more is written, the rest of the
file is still checked, and the whole file is refused, so the transaction
rolls back and the database is left as it was. One audit event per import
names the file and what changed.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, bindparam, insert, select, update

from lifecycle.acts import invitations, stars
from lifecycle.console import (
    Env,
    Listed,
    SafePath,
    common,
    echo,
    emit_json,
    emit_list,
    encoding_option,
    json_option,
    list_options,
    run_import,
    table,
)
from lifecycle.core import audit
from lifecycle.core.models import Expert, Society
from lifecycle.core.tabular import (
    ID_LIMIT,
    Bool,
    InputError,
    Problems,
    Row,
    TextList,
    cell,
    check_unique,
    chunked,
    iter_table,
)
from lifecycle.engine import permissions
from states import roles as R

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Person(Row):
    id: str = cell(limit=ID_LIMIT)
    name: str = cell()
    name_en: str = cell("")
    email: str = cell(limit=254)
    institution: str = cell("")
    language: str = cell("zh", limit=8, about="zh or en")


class SocietyRow(_Person):
    """One society (学会) of the society file."""

    annual_inspection_passed: Bool = cell(True)
    penalty: Bool = cell(False)
    society_class: str = cell("", aliases=("class",), limit=64,
                              about="the class of society (理科, 工科, ...) a call's rules may name")
    payee_name: str = cell("", aliases=("account_name", "户名"),
                           about="the account holder grants are paid to")
    payee_bank: str = cell("", aliases=("bank", "开户行"), about="the bank of that account")
    payee_account: str = cell("", aliases=("account_number", "账号"), limit=64,
                              about="the account number (shown masked but to finance)")


class ExpertRow(_Person):
    """One expert (专家) of the expert file; lists separated by ; or , or line breaks."""

    disciplines: TextList = cell(list, multiline=True)
    societies: TextList = cell(list, multiline=True)
    conflict_societies: TextList = cell(list, multiline=True)
    conflict_institutions: TextList = cell(list, multiline=True)


def _check_common(source: str, rows: list[tuple[int, dict[str, Any]]],
                  seen: dict[Any, int]) -> list[str]:
    problems = check_unique(source, rows, "id", seen)
    for number, v in rows:
        if v["email"] and not re.match(EMAIL, v["email"]):
            problems.append(f"{source}: row {number}, column email: {v['email']!r} "
                            "is not an email address")
        if v["language"] and v["language"] not in ("zh", "en"):
            problems.append(f"{source}: row {number}, column language: {v['language']!r} "
                            "is not zh or en")
    return problems


def _upsert(conn: Connection, model: Any, rows: list[dict[str, Any]]) -> tuple[int, int]:
    ids = [r["id"] for r in rows]
    known = set()
    for start in range(0, len(ids), 5000):
        known |= set(conn.execute(select(model.id).where(model.id.in_(ids[start:start + 5000])))
                     .scalars())
    new = [r for r in rows if r["id"] not in known]
    if new:
        conn.execute(insert(model), new)
    old = [{**r, "b_id": r["id"]} for r in rows if r["id"] in known]
    if old:
        columns = [c for c in old[0] if c not in ("id", "b_id")]
        conn.execute(update(model).where(model.id == bindparam("b_id"))
                     .values({c: bindparam(c) for c in columns}), old)
    return len(new), len(old)


def _import(conn: Connection, path: str | Path, model: Any, columns: type[Row],
            check: Any, encoding: str | None) -> tuple[int, int, list[str]]:
    """Stream the file: check each chunk, write it while the file is clean, refuse at the end."""
    source = str(path)
    problems = Problems()
    seen: dict[Any, int] = {}
    created = updated = 0
    ids: list[str] = []
    for chunk in chunked(iter_table(path, columns, problems, encoding)):
        problems += _check_common(source, chunk, seen)
        problems += check(source, chunk)
        ids += [v["id"] for _, v in chunk]
        if not problems:
            c, u = _upsert(conn, model, [v for _, v in chunk])
            created, updated = created + c, updated + u
    if problems:
        raise InputError(source, problems)
    return created, updated, ids


def import_societies(conn: Connection, path: str | Path, actor: str, *,
                     encoding: str | None = None, accounts: bool = False) -> dict[str, int]:
    """Insert or update societies from a CSV/XLSX file; with `accounts`, an account and a
    held invitation for each society's contact that has none (`invitations.invite_contacts`)."""
    actor = permissions.require(conn, actor, "registry.import")
    created, updated, ids = _import(conn, path, Society, SocietyRow,
                                    lambda source, chunk: [], encoding)
    audit.record(conn, actor, [audit.Event("society_import", payload={
        "file": Path(path).name, "created": created, "updated": updated, "ids": ids})])
    invited = invitations.invite_contacts(conn, actor, ids, R.SOCIETY) if accounts else 0
    return {"created": created, "updated": updated, "invited": invited}


def import_experts(conn: Connection, path: str | Path, actor: str, *,
                   encoding: str | None = None, accounts: bool = False) -> dict[str, int]:
    """Insert or update experts from a CSV/XLSX file; societies they name must exist."""
    actor = permissions.require(conn, actor, "registry.import")
    known: set[str] = set()

    def societies_exist(source: str, chunk: list[tuple[int, dict[str, Any]]]) -> list[str]:
        named = {s for _, v in chunk for s in (v["societies"] or []) + (v["conflict_societies"]
                                                                        or [])} - known
        if named:
            known.update(conn.execute(select(Society.id).where(Society.id.in_(named))).scalars())
        return [f"{source}: row {number}, column {col}: unknown society {s!r}"
                for number, v in chunk for col in ("societies", "conflict_societies")
                for s in v[col] or [] if s not in known]

    created, updated, ids = _import(conn, path, Expert, ExpertRow, societies_exist,
                                    encoding)
    audit.record(conn, actor, [audit.Event("expert_import", payload={
        "file": Path(path).name, "created": created, "updated": updated, "ids": ids})])
    invited = invitations.invite_contacts(conn, actor, ids, R.EXPERT) if accounts else 0
    return {"created": created, "updated": updated, "invited": invited}


# --- commands: starfund society ..., starfund expert ... ------------------------------------

@click.group("society")
def society_group() -> None:
    """Societies (学会): import, list and show them."""


@society_group.command("import")
@click.argument("file", type=SafePath(dir_okay=False))
@click.option("--accounts", is_flag=True,
              help="Also an account for each society contact that has none, with an "
                   "invitation held for review (`notify outbox`).")
@encoding_option
@common
def society_import(env: Env, file: str, encoding: str | None, accounts: bool) -> None:
    """Import societies from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    annual_inspection_passed, penalty, class (理科, 工科 ... as the programme's
    calls name their classes), payee_name, payee_bank, payee_account (where
    grants are paid; the account number is shown masked but to finance).

    \b
    Example:  starfund society import societies.xlsx
    """
    r = run_import(env, functools.partial(import_societies, accounts=accounts), file,
                   encoding=encoding)
    echo(f"societies: {r['created']} created, {r['updated']} updated"
         + (f"; {r['invited']} invited (held for review: `starfund notify outbox`)"
            if accounts else ""))


@society_group.command("show")
@click.argument("society_id", metavar="ID")
@json_option
@common
def society_show(env: Env, society_id: str) -> None:
    """One society: class, standing, current star, model society title, star history, the
    support earlier results earned it, and every application it ever made.

    \b
    Example:  starfund society show S012
    """
    with env.engine.connect() as conn:
        d = stars.society_profile(conn, society_id)
    if env.as_json:
        return emit_json(d)
    s, cur, model = d["society"], d["current_star"], d["model_society"]
    echo(f"{s['id']}  {s['name']}  {s['name_en']}  ({s['institution']})"
         f"  class {s['class'] or '-'}")
    echo(f"  annual inspection {'passed' if s['annual_inspection_passed'] else 'FAILED'}"
         f"  penalty {'YES' if s['penalty'] else 'no'}")
    echo("  current star: " + (f"{cur['stars']} ({cur['level']}) from {cur['call']}, "
                               f"valid until {cur['valid_until'][:10]}" if cur else "none"))
    echo("  model society (示范学会): " + (f"named by {model['call']}, valid until "
                                         f"{model['valid_until'][:10]}: {model['rule']}"
                                         if model else "no"))
    if d["barred_from_next_project_call"]:
        echo(f"  barred from the next project call: {d['barred_from_next_project_call']}")
    if d["star_history"]:
        table("star history", ["call", "stars", "total", "change", "reward", "awarded",
                               "valid until", "status", "why it ended"],
              [[h["call"], h["stars"], h["total"], h["change"], f"{h['reward']:,}",
                h["awarded_at"][:10], h["valid_until"][:10], h["status"],
                (f"{h['end_kind']}: {h['end_reason']}" if h["end_reason"] else "")]
               for h in d["star_history"]])
    if d["model_history"]:
        table("model society titles", ["call", "named", "valid until", "status", "rule",
                                       "why it ended"],
              [[m["call"], m["named_at"][:10], m["valid_until"][:10], m["status"], m["rule"],
                m["end_reason"]] for m in d["model_history"]])
    if d["earlier_years"]:
        table("earlier years (history import)", ["year", "kind", "project", "result", "file"],
              [[h["year"], h["kind"], h["project"],
                ("★" * h["stars"] if h["stars"] else "no star" if h["stars"] == 0 else
                 "was terminated" if h["terminated"] else h["grade"])
                + (" 示范学会" if h["model"] else ""), h["source"]] for h in d["earlier_years"]])
    if d["support"]:
        table("steady support received", ["call", "application", "support", "rule"],
              [[x["call"], x["application"], x["text"], x["rule"]] for x in d["support"]])
    table("applications", ["id", "call", "category", "class", "state", "granted",
                           "grade / stars", "decision"],
          [[a["id"], a["call"], a["category"], a["class"], a["state"], f"{a['granted'] or 0:,}",
            a["grade"] or ("★" * a["star_level"] if a["star_level"] else ""),
            (a["decision"] or "")[:70]] for a in d["applications"]])


@click.group("expert")
def expert_group() -> None:
    """Experts (专家): import them, list who still owes scores."""


@expert_group.command("import")
@click.argument("file", type=SafePath(dir_okay=False))
@click.option("--accounts", is_flag=True,
              help="Also an account for each expert that has none, with an "
                   "invitation held for review (`notify outbox`).")
@encoding_option
@common
def expert_import(env: Env, file: str, encoding: str | None, accounts: bool) -> None:
    """Import experts from CSV or XLSX (all or nothing).

    Columns: id, name, email; optional name_en, institution, language,
    disciplines, societies, conflict_societies, conflict_institutions
    (lists separated by ';').

    \b
    Example:  starfund expert import experts.csv
    """
    r = run_import(env, functools.partial(import_experts, accounts=accounts), file,
                   encoding=encoding)
    echo(f"experts: {r['created']} created, {r['updated']} updated"
         + (f"; {r['invited']} invited (held for review: `starfund notify outbox`)"
            if accounts else ""))


@society_group.command("list")
@click.option("--class", "society_class", metavar="CLASS", help="Only societies of this class.")
@list_options(("id", "name", "class", "stars", "applications", "granted"), "id")
@common
def society_list(env: Env, society_class: str | None, listing: dict[str, Any]) -> None:
    """Societies with their current star, applications and money granted, with totals.

    Account numbers are masked (**** 1234) except for the finance role; --json
    has every field (email, institution, payee).

    \b
    Example:  starfund society list --sort -granted
    """
    from lifecycle.reporting import lists
    from states.roles import FINANCE

    with env.engine.connect() as conn:
        rows = lists.societies(conn, society_class, reveal=env.actor.holds((FINANCE,)))
    emit_list(env, listing, "societies", rows,
              [Listed("id", "id", width=8), Listed("name", "name", width=20),
               Listed("class", "class", width=8),
               Listed("stars", "stars", show=lambda v: "★" * v if v else ""),
               Listed("inspection", "年检", show=lambda v: "ok" if v else "FAILED"),
               Listed("applications", "apps", number=True),
               Listed("granted", "granted", number=True)],
              {"granted": sum(r["granted"] for r in rows)}, "societies")


@expert_group.command("list")
@click.option("--call", "call_id", metavar="CALL", help="Only assignments of this call.")
@click.option("--outstanding", is_flag=True,
              help="Only experts who still owe scores (how many, since when).")
@list_options(("id", "name", "assigned", "returned", "outstanding", "since"), "id")
@common
def expert_list(env: Env, call_id: str | None, outstanding: bool,
                listing: dict[str, Any]) -> None:
    """Experts and their review load: assigned, returned, still owed and since when.

    \b
    Example:  starfund expert list --call 2025-project --outstanding --sort since
    """
    from lifecycle.acts.reports import known
    from lifecycle.reporting import lists

    with env.engine.connect() as conn:
        known(conn, call_id=call_id)
        rows = lists.experts(conn, call_id, outstanding)
    emit_list(env, listing, "experts" + (f" of {call_id}" if call_id else "")
              + (" who still owe scores" if outstanding else ""), rows,
              [Listed("id", "id", width=8), Listed("name", "name", width=12),
               Listed("institution", "institution", width=16),
               Listed("assigned", "assigned", number=True),
               Listed("returned", "returned", number=True),
               Listed("outstanding", "owed", number=True),
               Listed("since", "owed since", show=lambda v: v[:10])],
              {"owed": sum(r["outstanding"] for r in rows)}, "experts")
