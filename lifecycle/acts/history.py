"""Earlier years' results brought in (`starfund history import FILE`), for the rules that read
history: a society terminated or failed the year before is barred, an earlier 优秀 earns
steady support, earlier star levels count for model societies and star changes
(`lifecycle.rules.past` says how each imported year stands for an earlier call).

One row per result: a project's final grade or termination (kinds that fund projects), or
the star level and model society title a star rating gave (kinds that rate stars). All or
nothing, like every import; each year imported is one `history_import` event naming the
file and its SHA-256. A year must come before the first call of its kind run inside
starfund, and before this year.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, func, insert, select

from lifecycle import kinds
from lifecycle.console import (
    Env,
    SafePath,
    common,
    echo,
    emit_json,
    encoding_option,
    json_option,
    run_import,
)
from lifecycle.core import audit, clock
from lifecycle.core.callconfig import Assessment
from lifecycle.core.models import Call, PastResult, Society
from lifecycle.core.snapshots import sha256
from lifecycle.core.tabular import ID_LIMIT, Bool, InputError, Int, Problems, Row, cell, read_table
from lifecycle.engine import permissions
from lifecycle.rules import past

ACTION = "history_import"
GRADES = (*Assessment().grades, past.FAIL_GRADE)
"""The grades an imported project may have: the programme's default grade names."""
MAX_STARS = 5


class HistoryRow(Row):
    """One earlier result of one society (`starfund history import`)."""

    year: Int = cell(about="the year of the result (before this year and before the first "
                           "call of its kind run in starfund)")
    society: str = cell(aliases=("society_id", "学会"), limit=ID_LIMIT,
                        about="the society's id, as in `society import`")
    kind: str = cell("project", limit=64, about="the kind of call: project, star or grant")
    project: str = cell("", limit=64, aliases=("项目编号",),
                        about="the project's reference in the earlier records (project kinds)")
    title: str = cell("", limit=500, about="the project's title")
    grade: str = cell("", limit=16, aliases=("等级",),
                      about=f"the project's final grade: {', '.join(GRADES)}")
    terminated: Bool = cell(False, aliases=("终止",), about="the project was terminated")
    stars: Int | None = cell(None, aliases=("星级",), about="the star level a rating gave, 0-5 "
                                                           "(star kinds)")
    model: Bool = cell(False, aliases=("示范学会",), about="named a model society (star kinds)")


def import_history(conn: Connection, path: str | Path, actor: Any, *,
                   encoding: str | None = None) -> dict[str, Any]:
    """Check every row of the file, then write them all (or nothing) and audit each year."""
    actor = permissions.require(conn, actor, "history.import")
    source, name = str(path), Path(path).name
    digest = sha256(Path(path))
    problems = Problems()
    rows = read_table(path, HistoryRow, problems, encoding)
    before = conn.execute(select(PastResult.source, PastResult.imported_at)
                          .where(PastResult.source_sha256 == digest)).first()
    if before is not None:
        raise InputError(source, [f"{source}: this file (SHA-256 {digest[:16]}...) was imported "
                                  f"already, as {before.source} on {before.imported_at:%Y-%m-%d}"])
    known = set(conn.execute(select(Society.id).where(
        Society.id.in_(sorted({v["society"] for _, v in rows if v["society"]})))).scalars())
    first = {k: y for k, y in conn.execute(select(Call.workflow, func.min(Call.created_at))
                                           .group_by(Call.workflow)).all()}
    held = {(r.society_id, r.year, r.kind, r.project) for r in conn.execute(
        select(PastResult.society_id, PastResult.year, PastResult.kind, PastResult.project))}
    this_year = clock.now().year
    seen: dict[tuple, int] = {}
    out = []
    for number, v in rows:
        where = f"{source}: row {number}"
        problems += _check(where, v, known, first, this_year)
        key = (v["society"], v["year"], v["kind"], v["project"] or "")
        if key in seen:
            problems.append(f"{where}: the same result as row {seen[key]} (society, year, kind, "
                            "project)")
        elif key in held:
            problems.append(f"{where}: this result of {v['society']} in {v['year']} was "
                            "imported already")
        seen.setdefault(key, number)
        out.append(v)
    if problems:
        raise InputError(source, problems)
    now = clock.now()
    conn.execute(insert(PastResult), [
        {"society_id": v["society"], "year": v["year"], "kind": v["kind"],
         "project": v["project"] or "", "title": v["title"] or "", "grade": v["grade"] or None,
         "terminated": bool(v["terminated"]), "stars": v["stars"], "model": bool(v["model"]),
         "source": name[:255], "source_sha256": digest, "imported_at": now} for v in out])
    years = Counter(v["year"] for v in out)
    audit.record(conn, actor, [audit.Event(ACTION, payload={
        "year": year, "file": name, "sha256": digest, "rows": n,
        "kinds": sorted({v["kind"] for v in out if v["year"] == year}),
        "societies": len({v["society"] for v in out if v["year"] == year})})
        for year, n in sorted(years.items())])
    return {"rows": len(out), "years": dict(sorted(years.items())), "sha256": digest}


def _check(where: str, v: dict[str, Any], known: set[str], first: dict[str, Any],
           this_year: int) -> list[str]:
    problems = []
    if v["society"] and v["society"] not in known:
        problems.append(f"{where}, column society: unknown society {v['society']!r} (import "
                        "it first: `starfund society import`)")
    kind = None
    if v["kind"]:
        try:
            kind = kinds.of(v["kind"])
        except kinds.UnknownKind as e:
            problems.append(f"{where}, column kind: {e}")
    year = v["year"]
    if year is not None:
        if not 1980 <= year < this_year:
            problems.append(f"{where}, column year: {year} is not an earlier year (1980 to "
                            f"{this_year - 1})")
        elif kind is not None and kind.name in first and year >= first[kind.name].year:
            problems.append(f"{where}, column year: {year} is not before the first "
                            f"{kind.name} call run in starfund (created in "
                            f"{first[kind.name].year}); bring in the years before it")
    if kind is None:
        return problems
    if kind.rates_stars:
        if v["stars"] is None:
            problems.append(f"{where}, column stars: a {kind.name} result is a star level 0-5")
        elif not 0 <= v["stars"] <= MAX_STARS:
            problems.append(f"{where}, column stars: {v['stars']} is not a star level (0-5)")
        elif v["model"] and v["stars"] == 0:
            problems.append(f"{where}, column model: a model society holds a star")
        for column in ("project", "grade"):
            if v[column]:
                problems.append(f"{where}, column {column}: a {kind.name} result has no "
                                f"{column} (it is a star level)")
        if v["terminated"]:
            problems.append(f"{where}, column terminated: a {kind.name} result is not "
                            "terminated (it is a star level)")
        return problems
    if not v["project"]:
        problems.append(f"{where}, column project: a {kind.name} result names its project")
    if v["grade"] and v["grade"] not in GRADES:
        problems.append(f"{where}, column grade: {v['grade']!r} is not a grade (accepted: "
                        f"{', '.join(GRADES)})")
    if not v["grade"] and not v["terminated"]:
        problems.append(f"{where}: a {kind.name} result has a grade, or was terminated")
    if v["stars"] is not None or v["model"]:
        problems.append(f"{where}, column stars: a {kind.name} result has no star level")
    return problems


@click.group("history")
def history_group() -> None:
    """Earlier years' results (before starfund), for the rules that read history."""


@history_group.command("import")
@click.argument("file", type=SafePath(dir_okay=False, exists=True))
@encoding_option
@json_option
@common
def history_import(env: Env, file: str, encoding: str | None) -> None:
    """Bring in earlier years' results per society from CSV or XLSX (all or nothing).

    Columns: year, society, kind (project, star, grant; default project), and
    for a project: project (its reference), title, grade (优秀, 良好, 合格,
    不合格) and/or terminated; for a star rating: stars (0-5) and model (named a
    model society). The bar after a failed or terminated project, steady
    support, model societies and star changes then count these years as
    earlier calls (docs/guide.md). Each year is audited with the file's SHA-256.

    \b
    Example:  starfund history import examples/history.csv
    """
    r = run_import(env, import_history, file, encoding=encoding)
    if env.as_json:
        return emit_json(r)
    echo(f"history: {r['rows']} result(s) of " + ", ".join(f"{y} ({n})" for y, n in
                                                           r["years"].items())
         + f" imported (SHA-256 {r['sha256'][:16]}...)")
