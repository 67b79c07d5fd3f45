"""Importing societies' declarations into a call as drafts (all-or-nothing)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from lifecycle import audit, engine
from lifecycle.models import Application, Society
from lifecycle.tabular import Column, InputError, as_int, as_list, check_unique, read_table

COLUMNS = [
    Column("id", required=False, default=""),
    Column("society_id"), Column("category"), Column("title"),
    Column("title_en", required=False, default=""),
    Column("discipline", required=False, default=""),
    Column("requested_amount", as_int),
    Column("summary", required=False, default=""),
    Column("excluded_experts", as_list, required=False, default=list),
]


def import_applications(conn: Connection, call_id: str, path: str | Path,
                        actor: str) -> dict[str, int]:
    """Create the file's applications as drafts of the call, or refuse the whole file."""
    source = str(path)
    call = engine.load_call(conn, call_id)
    problems: list[str] = []
    rows = read_table(path, COLUMNS, problems)
    societies = {v["society_id"] for _, v in rows}
    known = set(conn.execute(select(Society.id).where(Society.id.in_(societies))).scalars())
    count = conn.execute(select(func.count()).select_from(Application)
                         .where(Application.call_id == call_id)).scalar() or 0
    for number, v in rows:
        if v["society_id"] and v["society_id"] not in known:
            problems.append(f"{source}: row {number}, column society_id: "
                            f"unknown society {v['society_id']!r}")
        if v["category"] and call.category(v["category"]) is None:
            problems.append(f"{source}: row {number}, column category: {v['category']!r} is not "
                            f"a category of {call_id} ({', '.join(c.id for c in call.categories)})")
        if v["requested_amount"] is not None and v["requested_amount"] <= 0:
            problems.append(f"{source}: row {number}, column requested_amount: must be positive")
        if not v["id"]:
            count += 1
            v["id"] = f"{call_id}-{count:05d}"
    problems += check_unique(source, rows, "id")
    ids = [v["id"] for _, v in rows]
    taken = set()
    for start in range(0, len(ids), 5000):
        taken |= set(conn.execute(select(Application.id)
                                  .where(Application.id.in_(ids[start:start + 5000]))).scalars())
    problems += [f"{source}: row {n}, column id: application {v['id']!r} already exists"
                 for n, v in rows if v["id"] in taken]
    if problems:
        raise InputError(source, problems)
    records: list[dict[str, Any]] = []
    for _, v in rows:
        summary = v.pop("summary")
        records.append({**v, "fields": {"summary": summary} if summary else {}})
    engine.create_applications(conn, call, records, actor)
    audit.record(conn, actor, [audit.Event("application_import", call_id, payload={
        "file": Path(path).name, "created": len(records)})])
    return {"created": len(records)}
