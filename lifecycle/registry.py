"""The people starfund serves: societies and experts, imported from spreadsheets.

Imports are all-or-nothing: rows are parsed and checked first, and only a
clean file is written (new ids inserted, known ids updated), with one audit
event per import naming the file and what changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from lifecycle import audit
from lifecycle.models import Expert, Society
from lifecycle.tabular import Column, InputError, as_bool, as_list, check_unique, read_table

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

SOCIETY_COLUMNS = [
    Column("id"), Column("name"), Column("name_en", required=False, default=""),
    Column("email"), Column("institution", required=False, default=""),
    Column("language", required=False, default="zh"),
    Column("annual_inspection_passed", as_bool, required=False, default=True),
    Column("penalty", as_bool, required=False, default=False),
]

EXPERT_COLUMNS = [
    Column("id"), Column("name"), Column("name_en", required=False, default=""),
    Column("email"), Column("institution", required=False, default=""),
    Column("language", required=False, default="zh"),
    Column("disciplines", as_list, required=False, default=list),
    Column("societies", as_list, required=False, default=list),
    Column("conflict_societies", as_list, required=False, default=list),
    Column("conflict_institutions", as_list, required=False, default=list),
]


def _check_common(source: str, rows: list[tuple[int, dict[str, Any]]]) -> list[str]:
    import re

    problems = check_unique(source, rows, "id")
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


def import_societies(conn: Connection, path: str | Path, actor: str) -> dict[str, int]:
    """Insert or update societies from a CSV/XLSX file."""
    source = str(path)
    problems: list[str] = []
    rows = read_table(path, SOCIETY_COLUMNS, problems)
    problems += _check_common(source, rows)
    if problems:
        raise InputError(source, problems)
    created, updated = _upsert(conn, Society, [v for _, v in rows])
    audit.record(conn, actor, [audit.Event("society_import", payload={
        "file": Path(path).name, "created": created, "updated": updated,
        "ids": [v["id"] for _, v in rows]})])
    return {"created": created, "updated": updated}


def import_experts(conn: Connection, path: str | Path, actor: str) -> dict[str, int]:
    """Insert or update experts from a CSV/XLSX file; societies they name must exist."""
    source = str(path)
    problems: list[str] = []
    rows = read_table(path, EXPERT_COLUMNS, problems)
    problems += _check_common(source, rows)
    named = {s for _, v in rows for s in (v["societies"] or []) + (v["conflict_societies"] or [])}
    known = set(conn.execute(select(Society.id).where(Society.id.in_(named))).scalars()) \
        if named else set()
    for number, v in rows:
        for col in ("societies", "conflict_societies"):
            for s in v[col] or []:
                if s not in known:
                    problems.append(f"{source}: row {number}, column {col}: "
                                    f"unknown society {s!r}")
    if problems:
        raise InputError(source, problems)
    created, updated = _upsert(conn, Expert, [v for _, v in rows])
    audit.record(conn, actor, [audit.Event("expert_import", payload={
        "file": Path(path).name, "created": created, "updated": updated,
        "ids": [v["id"] for _, v in rows]})])
    return {"created": created, "updated": updated}
