"""Importing societies' declarations into a call as drafts (all-or-nothing, streamed).

The file is read, checked and created a chunk at a time inside the caller's
one transaction; once a problem is found nothing more is written, the rest of
the file is still checked, and the whole file is refused, so the transaction
rolls back and the database is left as it was.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, func, select

from lifecycle.console import (
    Env,
    Listed,
    SafePath,
    common,
    echo,
    emit_list,
    encoding_option,
    list_options,
    run_import,
)
from lifecycle.core import audit
from lifecycle.core.models import Application, Society
from lifecycle.core.tabular import (
    InputError,
    Problems,
    check_unique,
    chunked,
    iter_table,
)
from lifecycle.engine import engine, permissions

from . import drafts
from .drafts import DeclarationRow


def import_applications(conn: Connection, call_id: str, path: str | Path,
                        actor: str, *, encoding: str | None = None) -> dict[str, int]:
    """Create the file's applications as drafts of the call, or refuse the whole file."""
    actor = permissions.require(conn, actor, "declaration.import", engine.load_call(conn, call_id))
    source = str(path)
    call = engine.load_call(conn, call_id)
    problems = Problems()
    count = conn.execute(select(func.count()).select_from(Application)
                         .where(Application.call_id == call_id)).scalar() or 0
    known: dict[str, str] = {}  # society -> its class now
    unknown: set[str] = set()
    seen: dict[Any, int] = {}
    created = 0
    for rows in chunked(iter_table(path, DeclarationRow, problems, encoding)):
        named = {v["society_id"] for _, v in rows if v["society_id"]} - set(known) - unknown
        if named:
            found = dict(conn.execute(select(Society.id, Society.society_class)
                                      .where(Society.id.in_(named))).all())
            known.update(found)
            unknown |= named - set(found)
        earlier = {v["continues"] for _, v in rows if v["continues"]}
        continued = {r.id: r for r in conn.execute(
            select(Application.id, Application.society_id, Application.call_id)
            .where(Application.id.in_(earlier)))} if earlier else {}
        for number, v in rows:
            if v["society_id"] and v["society_id"] not in known:
                problems.append(f"{source}: row {number}, column society_id: "
                                f"unknown society {v['society_id']!r}")
            if v["continues"]:
                before = continued.get(v["continues"])
                if before is None:
                    problems.append(f"{source}: row {number}, column continues: no earlier "
                                    f"application {v['continues']!r}")
                elif before.society_id != v["society_id"] or before.call_id == call_id:
                    problems.append(f"{source}: row {number}, column continues: "
                                    f"{v['continues']} is "
                                    + (f"{before.society_id}'s, not {v['society_id']}'s"
                                       if before.society_id != v["society_id"] else
                                       f"in {call_id} itself")
                                    + ": a declaration continues its own society's project "
                                      "of an earlier call")
            if v["category"] and call.category(v["category"]) is None:
                problems.append(f"{source}: row {number}, column category: {v['category']!r} "
                                f"is not a category of {call_id} "
                                f"({', '.join(c.id for c in call.categories)})")
            if v["requested_amount"] is not None and v["requested_amount"] <= 0:
                problems.append(f"{source}: row {number}, column requested_amount: "
                                "must be positive")
            if not v["id"]:
                count += 1
                v["id"] = f"{call_id}-{count:05d}"
        problems += check_unique(source, rows, "id", seen)
        first = [v["id"] for n, v in rows if seen.get(v["id"]) == n]  # repeats: named above
        taken = set(conn.execute(select(Application.id)
                                 .where(Application.id.in_(first))).scalars()) if first else set()
        problems += [f"{source}: row {n}, column id: application {v['id']!r} already exists"
                     for n, v in rows if v["id"] in taken and seen.get(v["id"]) == n]
        if problems:
            continue  # keep checking the rest of the file; nothing more is written
        records: list[dict[str, Any]] = []
        for _, v in rows:
            fields = {k: x for k in ("summary", "continues") if (x := v.pop(k))}
            records.append({**v, "fields": fields, "society_class": known[v["society_id"]]})
        created += engine.create_applications(conn, call, records, actor)
    if problems:
        raise InputError(source, problems)
    audit.record(conn, actor, [audit.Event("application_import", call_id, payload={
        "file": Path(path).name, "created": created})])
    return {"created": created}


# --- commands: starfund application ... ------------------------------------------------------

@click.group("application")
def application_group() -> None:
    """Applications (申报项目): import and list declarations."""


@application_group.command("import")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def application_import(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import declarations into CALL as drafts (all or nothing).

    Columns: society_id, category, title, requested_amount; optional id,
    title_en, discipline, summary, excluded_experts, continues (the earlier
    project of the same society this one continues: steady support may fund
    it without competing).

    \b
    Example:  starfund application import 2025-project declarations.xlsx
    """
    r = run_import(env, import_applications, call_id, file, encoding=encoding)
    echo(f"applications: {r['created']} drafts created in {call_id}")


@application_group.command("list")
@click.argument("call_id", metavar="[CALL]", required=False)
@click.option("--state", help="Only applications in this state.")
@click.option("--society", "society_id", metavar="ID", help="Only this society's.")
@click.option("--category", help="Only this category.")
@list_options(("id", "society", "category", "state", "requested", "granted", "score"), "id")
@common
def application_list(env: Env, call_id: str | None, state: str | None,
                     society_id: str | None, category: str | None,
                     listing: dict[str, Any]) -> None:
    """Applications (of CALL, or of every call), with totals, sorted and paged.

    The table fits 80 columns; --json has every field (category, title,
    class, rank, grade, stars, declared); --csv and --xlsx export every
    matching row.

    \b
    Example:  starfund application list 2025-project --state funded --sort -granted
              starfund application list --society S012 --xlsx s012.xlsx
    """
    from lifecycle.acts.reports import known
    from lifecycle.reporting import lists

    with env.engine.connect() as conn:
        known(conn, call_id=call_id, society_id=society_id)
        rows = lists.applications(conn, call_id, state, society_id, category)
    totals = {"requested": sum(r["requested"] or 0 for r in rows),
              "granted": sum(r["granted"] or 0 for r in rows)}
    emit_list(env, listing, f"applications of {call_id or 'every call'}", rows,
              [Listed("id", "id", width=22), Listed("society", "society", width=14),
               Listed("state", "state", width=14),
               Listed("requested", "requested", number=True),
               Listed("granted", "granted", number=True),
               Listed("score", "score", number=True, show=lambda v: f"{v:.1f}")],
              totals, "applications")


@application_group.command("attach")
@click.argument("app_id", metavar="APP")
@click.argument("file", type=SafePath(exists=True, dir_okay=False))
@click.option("--kind", required=True,
              help="The call's attachment kind (application_form, budget, ...).")
@common
def application_attach(env: Env, app_id: str, file: str, kind: str) -> None:
    """Attach FILE to the draft APP as KIND (checked by content; replaces the kind's earlier file).

    \b
    Example:  starfund application attach 2025-project-00001 shenbaoshu.pdf --kind application_form
    """
    data = Path(file).read_bytes()
    with env.engine.begin() as conn:
        r = drafts.attach(conn, app_id, kind, Path(file).name, data, env.actor)
    echo(f"{r['application']}: {r['kind']} {r['file']} ({r['type']}, {r['bytes']:,} bytes, "
         f"sha256 {r['sha256'][:12]}...)")
