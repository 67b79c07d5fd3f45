"""Performance assessment acts: reports recorded, grades imported, outcomes proposed and overridden.

Reports and grades are administrative acts, each audited; they do not move an
application. Outcomes move applications only through `lifecycle.engine.engine`:
`decide_outcome` confirms the proposals in batch, `override` decides one
application otherwise with a required reason.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, bindparam, select, update

from lifecycle.console import (
    Env,
    SafePath,
    common,
    echo,
    emit_json,
    encoding_option,
    json_option,
    run_import,
    show_report,
    table,
)
from lifecycle.core import audit, clock, uploads
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Application, AssessmentRecord
from lifecycle.core.tabular import ID_LIMIT, Float, InputError, Row, cell, read_table
from lifecycle.engine import engine, permissions
from lifecycle.rules.grades import grade_of, proposal_of
from states.assessment import ASSESSED, ASSESSMENT_DUE

MAX_REPORT_BYTES = 20 * 1024 * 1024
OUTCOMES = ("continue", "adjust", "terminate")

class GradeRow(Row):
    """One grade of a performance assessment (one row per grader and application)."""

    application_id: str = cell(aliases=("application", "id"), limit=ID_LIMIT)
    score: Float = cell()
    grader: str = cell("admin", aliases=("expert_id", "expert"), limit=100)
    comment: str = cell("", limit=5000, multiline=True)


class AssessmentError(engine.EngineError):
    pass


def _app(conn: Connection, app_id: str) -> Any:
    app = conn.execute(select(Application.id, Application.call_id, Application.state,
                              Application.checkpoint, Application.society_id).where(Application.id == app_id)).first()
    if app is None:
        raise AssessmentError(f"no application {app_id!r}")
    return app


def record_report(conn: Connection, app_id: str, path: str | Path | tuple[str, bytes],
                  actor: str) -> dict[str, Any]:
    """Record the society's report for its current checkpoint (stored with its SHA-256);
    `path` is a file, or (name, bytes) as the portal receives an upload."""
    actor = permissions.require(conn, actor, "assessment.report")
    app = _app(conn, app_id)
    permissions.check_scope(actor, society_id=app.society_id)
    if app.state != ASSESSMENT_DUE:
        raise AssessmentError(f"{app_id} is {app.state}, not awaiting a performance report "
                              "(open the assessment first: starfund advance CALL open_assessment)")
    if isinstance(path, tuple):
        name, data = uploads.safe_name(path[0]), path[1]
        try:
            uploads.check(name, data, ("pdf", "docx", "xlsx"), MAX_REPORT_BYTES)
        except BadValue as e:
            raise InputError(name, [str(e)]) from None
        path = Path(name)
    else:
        path = Path(path)
        if not path.is_file():
            raise InputError(str(path), [f"{path}: no such file"])
        data = path.read_bytes()
    if not data:
        raise InputError(str(path), [f"{path}: the report is empty"])
    if len(data) > MAX_REPORT_BYTES:
        raise InputError(str(path), [f"{path}: larger than {MAX_REPORT_BYTES // 2**20} MB"])
    call = engine.load_call(conn, app.call_id)
    due = next(c.report_due for c in call.checkpoints() if c.id == app.checkpoint)
    now = clock.now()
    digest = hashlib.sha256(data).hexdigest()
    rec = conn.execute(select(AssessmentRecord.id, AssessmentRecord.report_sha256)
                       .where(AssessmentRecord.application_id == app_id,
                              AssessmentRecord.checkpoint == app.checkpoint)).first()
    conn.execute(update(AssessmentRecord).where(AssessmentRecord.id == rec.id).values(
        report_file=path.name, report_sha256=digest, report_size=len(data), report_data=data,
        report_at=now, report_late=now > due))
    audit.record(conn, actor, [audit.Event("assessment_report", app.call_id, app_id, payload={
        "checkpoint": app.checkpoint, "file": path.name, "bytes": len(data), "sha256": digest,
        "late": now > due, "replaces": rec.report_sha256})])
    return {"application": app_id, "checkpoint": app.checkpoint, "file": path.name,
            "bytes": len(data), "late": now > due, "due": due.isoformat(sep=" ")}


def import_grades(conn: Connection, call_id: str, path: str | Path, actor: str, *,
                  encoding: str | None = None) -> dict[str, int]:
    """Grades of the current checkpoint from CSV/XLSX; several graders per application average.

    All or nothing: an unknown application, one not awaiting assessment, a score
    outside the scale or a grader named twice for one application refuses the file.
    """
    actor = permissions.require(conn, actor, "assessment.grade", engine.load_call(conn, call_id))
    source = str(path)
    call = engine.load_call(conn, call_id)
    rows = read_table(path, GradeRow, encoding=encoding)
    due = {r.id: r for r in conn.execute(
        select(Application.id, Application.state, Application.checkpoint)
        .where(Application.call_id == call_id))}
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    scores: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    scale = call.assessment.scale
    for n, v in rows:
        a = due.get(v["application_id"])
        if a is None:
            problems.append(f"{source}: row {n}, column application_id: no application "
                            f"{v['application_id']!r} in {call_id}")
        elif a.state != ASSESSMENT_DUE:
            problems.append(f"{source}: row {n}, column application_id: {a.id} is {a.state}, "
                            "not awaiting assessment")
        if not 0 <= v["score"] <= scale:
            problems.append(f"{source}: row {n}, column score: {v['score']:g} is outside "
                            f"0..{scale:g}")
        key = (v["application_id"], v["grader"])
        if key in seen:
            problems.append(f"{source}: row {n}, column grader: {v['grader']} already graded "
                            f"{v['application_id']} in row {seen[key]}")
        seen.setdefault(key, n)
        scores[v["application_id"]].append((v["grader"], v["score"], v["comment"]))
    if problems:
        raise InputError(source, problems)
    now = clock.now()
    recs = {r.application_id: r for r in conn.execute(
        select(AssessmentRecord.id, AssessmentRecord.application_id, AssessmentRecord.checkpoint,
               AssessmentRecord.score, AssessmentRecord.grade)
        .where(AssessmentRecord.call_id == call_id)) if r.application_id in scores
        and r.checkpoint == due[r.application_id].checkpoint}
    app_rows, rec_rows, events = [], [], []
    for app_id, given in scores.items():
        score = round(sum(s for _, s, _ in given) / len(given), 2)
        grade = grade_of(call, score)
        rec = recs[app_id]
        graders = [{"grader": g, "score": s, "comment": c} for g, s, c in given]
        app_rows.append({"b_id": app_id, "assessment_score": score, "assessment_grade": grade})
        rec_rows.append({"b_id": rec.id, "score": score, "grade": grade, "graders": graders,
                         "graded_at": now})
        events.append(audit.Event("grade", call_id, app_id, payload={
            "checkpoint": rec.checkpoint, "score": score, "grade": grade, "graders": graders,
            "old": {"score": rec.score, "grade": rec.grade} if rec.grade else None,
            "proposes": proposal_of(call, grade), "file": Path(path).name}))
    conn.execute(update(Application).where(Application.id == bindparam("b_id"))
                 .values(assessment_score=bindparam("assessment_score"),
                         assessment_grade=bindparam("assessment_grade")), app_rows)
    conn.execute(update(AssessmentRecord).where(AssessmentRecord.id == bindparam("b_id"))
                 .values(score=bindparam("score"), grade=bindparam("grade"),
                         graders=bindparam("graders"), graded_at=bindparam("graded_at")),
                 rec_rows)
    audit.record(conn, actor, events)
    grades: dict[str, int] = defaultdict(int)
    for r in app_rows:
        grades[r["assessment_grade"]] += 1
    return {"graded": len(app_rows), "rows": len(rows), **grades}


def proposals(conn: Connection, call_id: str) -> list[dict[str, Any]]:
    """Assessed applications of the call with their grade and the outcome it proposes."""
    call = engine.load_call(conn, call_id)
    return [{"application": r.id, "society": r.society_id, "checkpoint": r.checkpoint,
             "score": r.assessment_score, "grade": r.assessment_grade,
             "proposed": proposal_of(call, r.assessment_grade), "granted": r.granted_amount}
            for r in conn.execute(select(Application.__table__)
                                  .where(Application.call_id == call_id,
                                         Application.state == ASSESSED)
                                  .order_by(Application.id))]


def override(conn: Connection, app_id: str, outcome: str, reason: str, actor: str,
             cut: float | None = None) -> engine.Report:
    """Decide one assessed application otherwise than its grade proposes; the reason is required.
    Runs in the caller's transaction (`conn`)."""
    if outcome not in OUTCOMES:
        raise AssessmentError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if not (reason or "").strip():
        raise AssessmentError("an override needs a reason (--reason TEXT): it goes into the "
                              "audit trail")
    if cut is not None and outcome != "adjust":
        raise AssessmentError("--cut only goes with --to adjust")
    app = _app(conn, app_id)
    options: dict[str, Any] = {"outcome": outcome, "reason": reason.strip(), "override": True}
    if cut is not None:
        options["cut"] = cut
    report = engine.advance(conn, app.call_id, "override_outcome", actor, only=[app_id],
                            options=options)
    if not report.moved_total:
        raise AssessmentError(f"{app_id} not overridden: "
                              f"{report.skipped_ids.get(app_id, 'not possible now')}")
    return report


def records(conn: Connection, app_id: str) -> list[dict[str, Any]]:
    """The checkpoints of one application: report and grade, for `starfund show`."""
    return [{"checkpoint": r.checkpoint, "report": r.report_file, "bytes": r.report_size,
             "sha256": r.report_sha256, "late": r.report_late,
             "report_at": r.report_at.isoformat(sep=" ") if r.report_at else None,
             "score": r.score, "grade": r.grade, "graders": r.graders}
            for r in conn.execute(select(AssessmentRecord.__table__)
                                  .where(AssessmentRecord.application_id == app_id)
                                  .order_by(AssessmentRecord.id))]


# --- commands: starfund assessment ..., starfund outcome override -------------------------------

@click.group("assessment")
def assessment_group() -> None:
    """Performance assessment (绩效考核): reports, grades, proposed outcomes."""


@assessment_group.command("report")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--file", "file", required=True, type=SafePath(dir_okay=False),
              help="The society's report (any file; stored with its SHA-256).")
@json_option
@common
def assessment_report(env: Env, app_id: str, file: str) -> None:
    """Record a society's performance report for its current checkpoint.

    \b
    Example:  starfund assessment report 2025-project-00001 --file midterm-00001.pdf
    """
    with env.engine.begin() as conn:
        r = record_report(conn, app_id, file, env.actor)
    if env.as_json:
        return emit_json(r)
    echo(f"report recorded for {r['application']} ({r['checkpoint']}): {r['file']}, "
         f"{r['bytes']:,} bytes" + (f" - LATE (due {r['due']})" if r["late"] else ""))


@assessment_group.command("grades")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def assessment_grades(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import assessment grades of CALL's current checkpoint (all or nothing).

    Columns: application_id, score; optional grader (several graders of one
    application are averaged), comment. The grade follows from the call's scale.

    \b
    Example:  starfund assessment grades 2025-project grades-midterm.xlsx
    """
    r = run_import(env, import_grades, call_id, file, encoding=encoding)
    per = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("graded", "rows"))
    echo(f"grades: {r['graded']} applications graded from {r['rows']} rows ({per})")


@assessment_group.command("outcomes")
@click.argument("call_id", metavar="CALL")
@json_option
@common
def assessment_outcomes(env: Env, call_id: str) -> None:
    """The outcome each assessed application's grade proposes (confirm: advance decide_outcome).

    \b
    Example:  starfund assessment outcomes 2025-project
    """
    with env.engine.connect() as conn:
        rows = proposals(conn, call_id)
    if env.as_json:
        return emit_json(rows)
    table(f"{call_id}: proposed outcomes (confirm all: starfund advance {call_id} "
          "decide_outcome; one otherwise: starfund outcome override)",
          ["application", "society", "checkpoint", "score", "grade", "proposed", "granted"],
          [[r["application"], r["society"], r["checkpoint"], r["score"], r["grade"],
            r["proposed"], f"{r['granted'] or 0:,}"] for r in rows])


@click.group("outcome")
def outcome_group() -> None:
    """Dynamic management (动态管理): override one application's outcome."""


@outcome_group.command("override")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--to", "outcome", required=True,
              type=click.Choice(["continue", "adjust", "terminate"]), help="The outcome.")
@click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
@click.option("--cut", type=click.FloatRange(0, 100, min_open=True, max_open=True),
              help="With --to adjust: percent cut of the remaining grant (default: the grade's).")
@json_option
@common
def outcome_override(env: Env, app_id: str, outcome: str, reason: str,
                     cut: float | None) -> None:
    """Decide one assessed application otherwise than its grade proposes, with a reason.

    \b
    Example:  starfund outcome override 2025-project-00007 --to continue \\
                --reason "report delayed by the venue closure; leadership group decision 2025-12-20"
    """
    with env.engine.begin() as conn:
        report = override(conn, app_id, outcome, reason, env.actor, cut)
    show_report(env, report)
