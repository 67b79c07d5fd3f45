"""Score sheets (评分表): the blank sheet an expert fills in, and importing returned sheets.

A sheet has one row per expert x application with a column per criterion
("wide"), or one row per expert x application x criterion with `criterion`
and `score` columns ("long"); CSV or XLSX. An import is all or nothing: only
assigned experts, only their own applications under review, every criterion,
each score within 0..max, no duplicate; otherwise the whole file is refused
with every bad row named. Importing an expert's sheet again is the only way to
correct a score; each correction is audited with the old and new values.
"""
from __future__ import annotations

import functools
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import create_model
from sqlalchemy import Connection, bindparam, select, update

from lifecycle.core import accounts, audit, clock
from lifecycle.core.callconfig import CallConfig, Criterion
from lifecycle.core.models import Application, Assignment, Call, Expert
from lifecycle.core.tabular import (
    ID_LIMIT,
    Float,
    InputError,
    Row,
    cell,
    new_workbook,
    read_header,
    read_table,
    xlsx_append,
)
from lifecycle.engine import engine, permissions
from notifications import delivery
from notifications.render import Attachment
from states.review import SCORING
from states.roles import COORDINATOR


class LongScoreRow(Row):
    """One criterion's score of one application by one expert (the long layout)."""

    expert_id: str = cell(limit=ID_LIMIT)
    application_id: str = cell(limit=ID_LIMIT)
    criterion: str = cell(limit=ID_LIMIT)
    score: Float = cell()
    title: str = cell("", limit=500)
    category: str = cell("", limit=ID_LIMIT)
    society: str = cell("", limit=300)
    comment: str = cell("", limit=5000, multiline=True)
    name: str = cell("", limit=300)
    max: str = cell("")


class WideScoreRow(Row):
    """One application's scores by one expert (the wide layout `review sheet` writes), plus
    one column per criterion of the call (`wide_row`)."""

    expert_id: str = cell(limit=ID_LIMIT)
    application_id: str = cell(limit=ID_LIMIT)
    title: str = cell("", limit=500)
    category: str = cell("", limit=ID_LIMIT)
    society: str = cell("", limit=300)
    comment: str = cell("", limit=5000, multiline=True)


@functools.cache
def wide_row(criteria: tuple[tuple[str, tuple[str, ...]], ...]) -> type[Row]:
    """The wide layout for a call's criteria ((id, other names) each): a Float column per
    criterion, optional. Fields are named c0, c1 ... with the criterion id as their header,
    so no criterion id clashes with a name pydantic keeps for itself."""
    return create_model("WideScores", __base__=WideScoreRow, **{
        f"c{n}": (Float | None, cell(None, aliases=names, name=cid))
        for n, (cid, names) in enumerate(criteria)})


class ScoreError(engine.EngineError):
    pass


def total_of(criteria: list[Criterion], scores: dict[str, float]) -> float:
    """The weighted total on 100 points of one expert's criterion scores."""
    weight = sum(c.weight for c in criteria)
    return round(math.fsum(scores[c.id] / c.max * c.weight for c in criteria) * 100 / weight, 2)


def all_criteria(call: CallConfig, categories: list[str] | None = None) -> list[Criterion]:
    """Every criterion id scored in the call (or in these categories), first spelling wins."""
    seen: dict[str, Criterion] = {}
    for cat in categories if categories is not None else [c.id for c in call.categories]:
        for c in call.criteria_for(cat):
            seen.setdefault(c.id, c)
    if categories is None:
        for c in call.criteria:
            seen.setdefault(c.id, c)
    return list(seen.values())


@dataclass
class Sheet:
    """One expert's scores of one application, and where each value came from (for messages)."""

    expert: str
    application: str
    where: str
    scores: dict[str, float] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)
    category: str = ""


# --- the blank sheet -------------------------------------------------------------------

def blank(conn: Connection, call_id: str, expert_id: str, path: str | Path) -> int:
    """Write the XLSX an expert fills in: its live assignments of the call, one row each.

    Every text cell is written inert (`tabular.xlsx_append`): a title such as
    =HYPERLINK(...) is text in the expert's office suite, never a live formula.
    """
    call = engine.load_call(conn, call_id)
    if conn.execute(select(Expert.id).where(Expert.id == expert_id)).first() is None:
        raise ScoreError(f"no expert {expert_id!r}")
    rows = conn.execute(
        select(Application.id, Application.title, Application.category)
        .join(Assignment, Assignment.application_id == Application.id)
        .where(Assignment.call_id == call_id, Assignment.expert_id == expert_id,
               Assignment.status.in_(("assigned", "submitted")))
        .order_by(Application.id)).all()
    if not rows:
        raise ScoreError(f"expert {expert_id} has no assignment in {call_id}")
    cats = sorted({r.category for r in rows})
    columns = all_criteria(call, cats)
    wb = new_workbook()
    ws = wb.create_sheet("scores")
    ws.freeze_panes = "E2"
    xlsx_append(ws, ["expert_id", "application_id", "title", "category"]
                + [c.id for c in columns] + ["comment"])
    for r in rows:
        xlsx_append(ws, [expert_id, r.id, r.title, r.category] + [None] * len(columns) + [None])
    info = wb.create_sheet("criteria")
    xlsx_append(info, ["category", "criterion", "name", "name_en", "max", "weight"])
    for cat in cats:
        for c in call.criteria_for(cat):
            xlsx_append(info, [cat, c.id, c.name, c.name_en, c.max, c.weight])
    xlsx_append(info, [])
    xlsx_append(info, ["Fill in one score per criterion of the application's category, from 0 "
                       "to its max (leave the others empty); return the first sheet. Call "
                       f"{call.id}: {call.title}"])
    wb.save(path)
    return len(rows)


# --- reading a returned sheet ----------------------------------------------------------

def read(path: str | Path, call: CallConfig,
         encoding: str | None = None) -> tuple[list[Sheet], list[str]]:
    """The file's sheets (wide or long layout) and the problems found while reading it."""
    source = str(path)
    header = read_header(path, encoding)
    problems: list[str] = []
    every = all_criteria(call)
    ids = [c.id for c in every]
    sheets: dict[tuple[str, str], Sheet] = {}
    if "criterion" in header or "score" in header:
        rows = read_table(path, LongScoreRow, problems, encoding)
        seen: dict[tuple[str, str, str], int] = {}
        for n, v in rows:
            e, a, c, s = v["expert_id"], v["application_id"], v["criterion"], v["score"]
            if not (e and a and c):
                continue
            if c not in ids:
                problems.append(f"{source}: row {n}, column criterion: unknown criterion {c!r} "
                                f"(the call's criteria: {', '.join(ids)})")
                continue
            if (e, a, c) in seen:
                problems.append(f"{source}: row {n}: expert {e}, application {a}, criterion {c} "
                                f"repeats row {seen[(e, a, c)]}")
                continue
            seen[(e, a, c)] = n
            sh = sheets.setdefault((e, a), Sheet(e, a, f"{source}: row {n}"))
            if s is not None:
                sh.scores[c] = s
            sh.cells[c] = f"{source}: row {n}, column score"
    else:
        by_name = {c.id: (c.name, c.name_en) for c in every}
        model = wide_row(tuple((c, tuple(x for x in by_name[c] if x)) for c in ids))
        rows = read_table(path, model, problems, encoding)
        first: dict[tuple[str, str], int] = {}
        for n, v in rows:
            e, a = v["expert_id"], v["application_id"]
            if not (e and a):
                continue
            if (e, a) in first:
                problems.append(f"{source}: row {n}: expert {e}, application {a} repeats row "
                                f"{first[(e, a)]}")
                continue
            first[(e, a)] = n
            sh = Sheet(e, a, f"{source}: row {n}")
            for c in ids:
                if v[c] is not None:
                    sh.scores[c] = v[c]
                    sh.cells[c] = f"{source}: row {n}, column {c}"
            sheets[(e, a)] = sh
    return list(sheets.values()), problems


def check(conn: Connection, call: CallConfig, sheets: list[Sheet]) -> list[str]:
    """Problems with the sheets against the call: who is assigned what, criteria and ranges."""
    problems: list[str] = []
    experts = {s.expert for s in sheets}
    known = set(conn.execute(select(Expert.id).where(Expert.id.in_(experts))).scalars()) \
        if experts else set()
    live = {(r.expert_id, r.application_id): r for r in conn.execute(
        select(Assignment.expert_id, Assignment.application_id, Application.state,
               Application.category)
        .join(Application, Application.id == Assignment.application_id)
        .where(Assignment.call_id == call.id, Assignment.expert_id.in_(experts),
               Assignment.status.in_(("assigned", "submitted"))))} if experts else {}
    for s in sheets:
        if s.expert not in known:
            problems.append(f"{s.where}, column expert_id: unknown expert {s.expert!r}")
            continue
        row = live.get((s.expert, s.application))
        if row is None:
            problems.append(f"{s.where}, column application_id: expert {s.expert} is not "
                            f"assigned to {s.application} in {call.id}")
            continue
        if row.state not in SCORING:
            problems.append(f"{s.where}, column application_id: {s.application} is {row.state}; "
                            "scores are accepted only while it is under review or reviewed")
        s.category = row.category
        crit = {c.id: c for c in call.criteria_for(row.category)}
        missing = [c for c in crit if c not in s.cells]
        if missing:
            problems.append(f"{s.where}: expert {s.expert}, application {s.application}: "
                            f"missing criteria {', '.join(missing)}")
        for c, v in s.scores.items():
            if c not in crit:
                problems.append(f"{s.cells.get(c, s.where)}: criterion {c!r} is not scored in "
                                f"category {row.category} ({', '.join(crit)})")
            elif not (math.isfinite(v) and 0 <= v <= crit[c].max):
                problems.append(f"{s.cells.get(c, s.where)}: {v:g} outside 0..{crit[c].max:g}")
    return problems


# --- writing ---------------------------------------------------------------------------

def save(conn: Connection, call: CallConfig, sheets: list[Sheet], actor: str,
         source: str = "") -> dict[str, int]:
    """Write checked sheets with one executemany; audit new scores and corrections (old -> new).

    The assignments written are locked first (PostgreSQL: FOR UPDATE; SQLite holds the
    write lock), so two imports at once never lose a score or misreport an old value.
    A coordinator imports anyone's sheets; an expert's own account saves only its own.
    """
    actor = accounts.resolve(conn, actor)
    act = "score.import" if actor.holds((COORDINATOR,)) else "score.submit"
    actor = permissions.require(conn, actor, act, call)
    for s in sheets:
        permissions.check_scope(actor, expert_id=s.expert)
    if conn.dialect.name != "sqlite":
        # share-lock the call: imports run side by side, an advance waits for none of them
        conn.execute(select(Call.id).where(Call.id == call.id).with_for_update(read=True))
    experts = sorted({s.expert for s in sheets})
    stmt = (select(Assignment.id, Assignment.expert_id, Assignment.application_id,
                   Assignment.scores, Assignment.total, Assignment.status)
            .where(Assignment.call_id == call.id, Assignment.expert_id.in_(experts),
                   Assignment.status.in_(("assigned", "submitted")))
            .order_by(Assignment.id))
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    current = {(r.expert_id, r.application_id): r for r in conn.execute(stmt)}
    now = clock.now()
    rows, events = [], []
    counts = {"scored": 0, "corrected": 0, "unchanged": 0}
    for s in sheets:
        a = current.get((s.expert, s.application))
        if a is None:
            raise ScoreError(f"{s.where}: expert {s.expert} is no longer assigned to "
                             f"{s.application}; nothing was imported")
        criteria = call.criteria_for(s.category)
        scores = {c.id: float(s.scores[c.id]) for c in criteria}
        total = total_of(criteria, scores)
        if a.status == "submitted" and a.scores == scores:
            counts["unchanged"] += 1
            continue
        rows.append({"b_id": a.id, "b_scores": scores, "b_total": total})
        if a.status == "submitted":
            counts["corrected"] += 1
            events.append(audit.Event("score_correct", call.id, s.application, payload={
                "expert": s.expert, "old": a.scores, "old_total": a.total, "new": scores,
                "new_total": total, "file": source}))
        else:
            counts["scored"] += 1
            events.append(audit.Event("score", call.id, s.application, payload={
                "expert": s.expert, "scores": scores, "total": total, "file": source}))
    if rows:
        stmt = (update(Assignment).where(Assignment.id == bindparam("b_id"))
                .values(scores=bindparam("b_scores"), total=bindparam("b_total"),
                        status="submitted", submitted_at=now, draft=None, draft_at=None))
        for start in range(0, len(rows), 5000):
            conn.execute(stmt, rows[start:start + 5000])
    events.append(audit.Event("score_import", call.id, payload={
        "file": source, "experts": experts, **counts}))
    audit.record(conn, actor, events, at=now)
    return counts


def import_file(conn: Connection, call_id: str, path: str | Path, actor: str, *,
                encoding: str | None = None) -> dict[str, int]:
    """Import a returned score sheet (wide or long, CSV or XLSX), or refuse the whole file."""
    call = engine.load_call(conn, call_id)
    sheets, problems = read(path, call, encoding)
    problems += check(conn, call, sheets)
    if problems:
        raise InputError(str(path), problems)
    if not sheets:
        raise InputError(str(path), [f"{path}: no scores in the file"])
    return save(conn, call, sheets, actor, Path(path).name)


def record(conn: Connection, call_id: str, triples: list[tuple[str, str, dict[str, float]]],
           actor: str) -> int:
    """Record (expert, application, scores) given through the API, checked like a file."""
    call = engine.load_call(conn, call_id)
    sheets = [Sheet(e, a, f"sheet {i} (expert {e}, application {a})", dict(sc),
                    {c: f"sheet {i}, criterion {c}" for c in sc})
              for i, (e, a, sc) in enumerate(triples, start=1)]
    seen: dict[tuple[str, str], str] = {}
    problems = []
    for s in sheets:
        if (s.expert, s.application) in seen:
            problems.append(f"{s.where}: repeats {seen[(s.expert, s.application)]}")
        seen.setdefault((s.expert, s.application), s.where)
    problems += check(conn, call, sheets)
    if problems:
        raise ScoreError("scores refused, nothing was recorded:\n  " + "\n  ".join(problems[:20]))
    r = save(conn, call, sheets, actor, "api")
    return r["scored"] + r["corrected"]



def save_draft(conn: Connection, call_id: str, expert_id: str, app_id: str,
               scores: dict[str, float | None], actor: accounts.Actor | str) -> dict[str, float]:
    """Keep an expert's unfinished scores (the portal's "save draft"): each given score is
    checked against its range now; submitting (`record`) checks them all and clears the draft."""
    call = engine.load_call(conn, call_id)
    actor = permissions.require(conn, actor, "score.submit", call)
    permissions.check_scope(actor, expert_id=expert_id)
    row = conn.execute(select(Assignment.id, Application.state, Application.category)
                       .join(Application, Application.id == Assignment.application_id)
                       .where(Assignment.call_id == call_id, Assignment.expert_id == expert_id,
                              Assignment.application_id == app_id,
                              Assignment.status.in_(("assigned", "submitted")))).first()
    if row is None:
        raise ScoreError(f"expert {expert_id} is not assigned to {app_id} in {call_id}")
    if row.state not in SCORING:
        raise ScoreError(f"{app_id} is {row.state}; scores are kept only while it is under "
                         "review or reviewed")
    crit = {c.id: c for c in call.criteria_for(row.category)}
    kept: dict[str, float] = {}
    for c, v in scores.items():
        if v is None:
            continue
        if c not in crit:
            raise ScoreError(f"criterion {c!r} is not scored in category {row.category}")
        if not (math.isfinite(v) and 0 <= v <= crit[c].max):
            raise ScoreError(f"{crit[c].name} ({c}): {v:g} outside 0..{crit[c].max:g}")
        kept[c] = float(v)
    conn.execute(update(Assignment).where(Assignment.id == row.id)
                 .values(draft=kept, draft_at=clock.now()))
    audit.record(conn, actor, [audit.Event("score_draft", call_id, app_id, payload={
        "expert": expert_id, "scores": kept})])
    return kept


# --- the score sheet a review assignment carries ----------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attached_sheet(db, row, cache: dict) -> list[Attachment]:
    """The expert's blank score sheet of the call, attached to its review assignment mail
    (one sheet per expert and call per delivery round); none once it has no assignment."""
    key = ("score-sheet", row.call_id, row.recipient_id)
    if key not in cache:
        with tempfile.TemporaryDirectory() as folder, db.connect() as conn:
            path = Path(folder) / "sheet.xlsx"
            try:
                blank(conn, row.call_id, row.recipient_id, path)
            except ScoreError:
                cache[key] = []
            else:
                cache[key] = [Attachment(f"score-sheet-{row.call_id}-{row.recipient_id}.xlsx",
                                         path.read_bytes(), XLSX)]
    return cache[key]


delivery.ATTACHERS["review_assigned"] = attached_sheet
