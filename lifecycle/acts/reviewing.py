"""Expert review as administrative acts, each audited: assignment, recusal (回避),
reassignment, score entry and the panel decision on disputed applications.

The algorithms live beside: `lifecycle.rules.assignment` (who reviews what),
`lifecycle.acts.scoresheets` (sheets in and out), `lifecycle.rules.ranking` (aggregation).
"""
from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Connection, func, insert, select, update

from lifecycle.acts import assignment, scoresheets
from lifecycle.console import (
    Env,
    OutputPath,
    SafePath,
    common,
    echo,
    emit_json,
    encoding_option,
    json_option,
    run_import,
    table,
)
from lifecycle.core import audit, clock
from lifecycle.core.models import Application, Assignment, Expert, PanelDecision, Society
from lifecycle.engine import engine, permissions
from lifecycle.rules import ranking
from lifecycle.rules.assignment import Applicant, Reviewer, conflict_of
from states.review import IN_REVIEW, SCORING, UNDER_REVIEW

LIVE = assignment.LIVE


class ReviewError(engine.EngineError):
    pass


def assign(conn: Connection, call_id: str, actor: str, **options: Any) -> dict[str, Any]:
    """Assign experts to every application in review (see `lifecycle.acts.assignment`)."""
    return assignment.assign(conn, call_id, actor, **options)


def record_scores(conn: Connection, call_id: str,
                  sheets: list[tuple[str, str, dict[str, float]]], actor: str) -> int:
    """Record (expert, application, scores) triples; each must be a live assignment."""
    return scoresheets.record(conn, call_id, sheets, actor)


def _application(conn: Connection, app_id: str) -> Any:
    row = conn.execute(
        select(Application.id, Application.call_id, Application.state, Application.society_id,
               Application.discipline, Application.excluded_experts, Application.title,
               Application.title_en, Application.category, Application.requested_amount,
               Society.institution, Society.name.label("society_name"),
               Society.name_en.label("society_name_en"))
        .join(Society, Society.id == Application.society_id)
        .where(Application.id == app_id)).first()
    if row is None:
        raise ReviewError(f"no application {app_id!r}")
    return row


def _in_review(app: Any, what: str) -> None:
    if app.state not in IN_REVIEW:
        raise ReviewError(f"{app.id} is {app.state}; {what} only while it is eligible or "
                          "under review")


def recuse(conn: Connection, app_id: str, expert_id: str, reason: str,
           actor: str) -> dict[str, Any]:
    """An expert declares a conflict after assignment: its slot is freed, its scores set aside."""
    actor = permissions.require(conn, actor, "review.recuse")
    permissions.check_scope(actor, expert_id=expert_id)
    app = _application(conn, app_id)
    _in_review(app, "experts recuse")
    row = conn.execute(select(Assignment.id, Assignment.status, Assignment.total)
                       .where(Assignment.application_id == app_id,
                              Assignment.expert_id == expert_id)).first()
    if row is None or row.status not in LIVE:
        raise ReviewError(f"expert {expert_id} is not assigned to {app_id}")
    if not reason.strip():
        raise ReviewError("a recusal needs a reason (--reason)")
    conn.execute(update(Assignment).where(Assignment.id == row.id).values(status="recused"))
    left = _live_count(conn, app_id)
    audit.record(conn, actor, [audit.Event("recuse", app.call_id, app_id, payload={
        "expert": expert_id, "reason": reason, "was": row.status, "total_set_aside": row.total,
        "experts_left": left})])
    return {"application": app_id, "expert": expert_id, "experts_left": left}


def _live_count(conn: Connection, app_id: str) -> int:
    return conn.execute(select(func.count()).select_from(Assignment)
                        .where(Assignment.application_id == app_id,
                               Assignment.status.in_(LIVE))).scalar() or 0


def reassign(conn: Connection, app_id: str, from_expert: str, to_expert: str, actor: str,
             reason: str = "", max_load: int | None = None) -> dict[str, Any]:
    """Give `from_expert`'s slot to `to_expert`, with the conflict and load checks of assign."""
    actor = permissions.require(conn, actor, "review.assign")
    app = _application(conn, app_id)
    _in_review(app, "experts are reassigned")
    call = engine.load_call(conn, app.call_id)
    rows = {r.expert_id: r for r in conn.execute(
        select(Assignment.id, Assignment.expert_id, Assignment.status, Assignment.replaces)
        .where(Assignment.application_id == app_id))}
    old = rows.get(from_expert)
    if old is None:
        raise ReviewError(f"expert {from_expert} was never assigned to {app_id}")
    if old.status == "submitted":
        raise ReviewError(f"expert {from_expert} already returned scores for {app_id}; if it has "
                          "a conflict, record it first with `starfund review recuse`")
    if any(r.replaces == from_expert for r in rows.values()):
        raise ReviewError(f"the slot of {from_expert} on {app_id} was already given to "
                          + ", ".join(r.expert_id for r in rows.values()
                                      if r.replaces == from_expert))
    ex = conn.execute(select(Expert.__table__).where(Expert.id == to_expert)).first()
    if ex is None:
        raise ReviewError(f"no expert {to_expert!r}")
    if to_expert in rows:
        raise ReviewError(f"expert {to_expert} is already on {app_id} "
                          f"({rows[to_expert].status})")
    reviewer = Reviewer(ex.id, ex.institution or "", frozenset(ex.disciplines or []),
                        frozenset(ex.societies or []), frozenset(ex.conflict_societies or []),
                        frozenset(ex.conflict_institutions or []))
    applicant = Applicant(app.id, app.society_id, app.institution or "", app.discipline or "",
                          frozenset(app.excluded_experts or []))
    why = conflict_of(reviewer, applicant)
    if why:
        raise ReviewError(f"expert {to_expert} may not review {app_id}: {why}")
    limit = max_load or call.review.max_load
    load = conn.execute(select(func.count()).select_from(Assignment)
                        .where(Assignment.call_id == app.call_id,
                               Assignment.expert_id == to_expert,
                               Assignment.status.in_(LIVE))).scalar() or 0
    if limit is not None and load >= limit:
        raise ReviewError(f"expert {to_expert} already has {load} applications of {app.call_id} "
                          f"(load limit {limit})")
    now = clock.now()
    if old.status in LIVE:
        conn.execute(update(Assignment).where(Assignment.id == old.id).values(status="released"))
    conn.execute(insert(Assignment).values(call_id=app.call_id, application_id=app_id,
                                           expert_id=to_expert, status="assigned",
                                           assigned_at=now, replaces=from_expert))
    audit.record(conn, actor, [audit.Event("reassign", app.call_id, app_id, payload={
        "from": from_expert, "to": to_expert, "from_status": old.status, "reason": reason,
        "to_load": load + 1})], at=now)
    if app.state == UNDER_REVIEW:
        assignment.notify_experts(conn, call, [(app, to_expert)], now)
    return {"application": app_id, "from": from_expert, "to": to_expert, "to_load": load + 1}


def panel_decision(conn: Connection, app_id: str, score: float, reason: str,
                   actor: str) -> dict[str, Any]:
    """Record the panel's score for a flagged application (reviewers disagreed), audited."""
    actor = permissions.require(conn, actor, "score.import")
    app = _application(conn, app_id)
    if app.state not in SCORING:
        raise ReviewError(f"{app_id} is {app.state}; a panel decision is taken before ranking")
    call = engine.load_call(conn, app.call_id)
    if not 0 <= score <= ranking.SCALE:
        raise ReviewError(f"--score {score:g} outside 0..{ranking.SCALE:g}")
    if not reason.strip():
        raise ReviewError("a panel decision needs a reason (--reason)")
    agg = ranking.call_aggregates(conn, call).get(app_id)
    if agg is None or not agg.flagged:
        spread = f"spread {agg.spread:.2f}" if agg else "no scores yet"
        raise ReviewError(f"{app_id} is not flagged ({spread}, flag above "
                          f"{call.review.spread_flag:g}); panel decisions are for applications "
                          "whose reviewers disagree")
    old = conn.execute(select(PanelDecision.score, PanelDecision.reason)
                       .where(PanelDecision.application_id == app_id)).first()
    now = clock.now()
    values = {"score": score, "reason": reason, "decided_by": actor.label, "decided_at": now}
    if old is None:
        conn.execute(insert(PanelDecision).values(application_id=app_id, call_id=app.call_id,
                                                  **values))
    else:
        conn.execute(update(PanelDecision).where(PanelDecision.application_id == app_id)
                     .values(**values))
    audit.record(conn, actor, [audit.Event("panel_decision", app.call_id, app_id, payload={
        "score": score, "reason": reason, "spread": agg.spread, "aggregate": agg.score
        if agg.panel is None else None, "old": None if old is None else
        {"score": old.score, "reason": old.reason}})], at=now)
    return {"application": app_id, "score": score, "spread": agg.spread}


# --- commands: starfund review ... -------------------------------------------------------------

@click.group("review")
def review_group() -> None:
    """Expert review: assignment, recusal and reassignment, score sheets, panel decisions."""


@review_group.command("assign")
@click.argument("call_id", metavar="CALL")
@click.option("--per-application", type=click.IntRange(1),
              help="Experts per application [default: the call's review.per_application].")
@click.option("--max-load", type=click.IntRange(1),
              help="Most applications per expert [default: the call's review.max_load, else "
                   "the smallest limit that works].")
@click.option("--seed", default=0, show_default=True, help="Tie-break seed: one seed, one result.")
@click.option("--dry-run", is_flag=True, help="Show what would be assigned; write nothing.")
@json_option
@common
def review_assign(env: Env, call_id: str, per_application: int | None, max_load: int | None,
                  seed: int, dry_run: bool) -> None:
    """Assign experts to every application of CALL in review, avoiding conflicts of interest.

    No expert gets an application of a society it belongs to, of its own
    institution, one it declared a conflict with, or one whose applicant
    excluded it; disciplines are matched where possible and loads balanced.
    If the pool cannot satisfy this, the short applications are named and
    nothing is assigned.

    \b
    Example:  starfund review assign 2025-project --per-application 5 --max-load 12 --seed 7
    """
    with env.engine.begin() as conn:
        r = assign(conn, call_id, env.actor, per_application=per_application,
                   max_load=max_load, seed=seed, dry_run=dry_run)
    if env.as_json:
        return emit_json(r)
    verb = "would make" if dry_run else "made"
    echo(f"{call_id}: {verb} {r['assigned']} assignments for {r['applications']} "
         f"applications ({r['per_application']} each, seed {r['seed']})")
    echo(f"  expert load {r['load_min']}..{r['load_max']} (limit {r['max_load']}); "
         f"discipline matched {r['discipline_matched']} of {r['assigned']}")
    if dry_run:
        table("planned assignments", ["application", "expert", "discipline match"],
              [[p["application"], p["expert"], "yes" if p["discipline_match"] else ""]
               for p in r["pairs"][:200]])


@review_group.command("reassign")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--from", "from_expert", required=True, metavar="EXPERT",
              help="The expert whose slot is given away (assigned, recused or taken off).")
@click.option("--to", "to_expert", required=True, metavar="EXPERT", help="The new expert.")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@click.option("--max-load", type=click.IntRange(1), help="Load limit for the new expert.")
@common
def review_reassign(env: Env, app_id: str, from_expert: str, to_expert: str, reason: str,
                    max_load: int | None) -> None:
    """Give an expert's slot on APPLICATION to another expert, with the conflict and load checks.

    \b
    Example:  starfund review reassign 2025-project-00012 --from E007 --to E031 --reason "on leave"
    """
    with env.engine.begin() as conn:
        r = reassign(conn, app_id, from_expert, to_expert, env.actor, reason, max_load)
    echo(f"{app_id}: {from_expert} -> {to_expert} (now {r['to_load']} applications "
         f"for {to_expert})")


@review_group.command("recuse")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--expert", required=True, metavar="EXPERT", help="The expert declaring a conflict.")
@click.option("--reason", required=True, help="The conflict declared (audited).")
@common
def review_recuse(env: Env, app_id: str, expert: str, reason: str) -> None:
    """Record that an assigned expert declares a conflict (回避); its slot is freed for reassignment.

    \b
    Example:  starfund review recuse 2025-project-00012 --expert E007 --reason "co-author of the PI"
    """
    with env.engine.begin() as conn:
        r = recuse(conn, app_id, expert, reason, env.actor)
    echo(f"{expert} recused from {app_id}; {r['experts_left']} expert(s) left. Fill the slot "
         f"with `starfund review reassign {app_id} --from {expert} --to EXPERT` or "
         "`starfund review assign CALL`.")


@review_group.command("sheet")
@click.argument("call_id", metavar="CALL")
@click.argument("expert_id", metavar="EXPERT")
@click.option("--out", "out", type=OutputPath(),
              help="File to write [default: scores-CALL-EXPERT.xlsx].")
@common
def review_sheet(env: Env, call_id: str, expert_id: str, out: str | None) -> None:
    """Write the blank score sheet (XLSX) EXPERT fills in: one row per assigned application.

    \b
    Example:  starfund review sheet 2025-project E007 --out E007.xlsx
    """
    path = out or f"scores-{call_id}-{expert_id}.xlsx"
    with env.engine.connect() as conn:
        n = scoresheets.blank(conn, call_id, expert_id, path)
    echo(f"{path}: {n} application(s) for {expert_id} to score")


@review_group.command("import")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def review_import(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import returned score sheets (CSV or XLSX), all or nothing.

    Wide layout: expert_id, application_id and one column per criterion id;
    long layout: expert_id, application_id, criterion, score. Re-importing an
    expert's sheet is how a score is corrected (audited with old and new values).

    \b
    Example:  starfund review import 2025-project E007.xlsx
    """
    r = run_import(env, scoresheets.import_file, call_id, file, encoding=encoding)
    echo(f"{file}: {r['scored']} sheet(s) scored, {r['corrected']} corrected, "
         f"{r['unchanged']} unchanged")


@review_group.command("panel")
@click.argument("app_id", metavar="APPLICATION")
@click.option("--score", required=True, type=click.FloatRange(0, 100),
              help="The panel's score (0..100).")
@click.option("--reason", required=True, help="The panel's reasoning (audited).")
@common
def review_panel(env: Env, app_id: str, score: float, reason: str) -> None:
    """Record the panel decision for an application whose reviewers disagreed (flagged).

    A flagged application blocks ranking until its panel decision is recorded;
    the panel's score replaces the aggregate.

    \b
    Example:  starfund review panel 2025-project-00012 --score 84 --reason "panel of 2025-05-08"
    """
    with env.engine.begin() as conn:
        r = panel_decision(conn, app_id, score, reason, env.actor)
    echo(f"{app_id}: panel score {r['score']:g} recorded (reviewers' spread "
         f"{r['spread']:.2f})")
