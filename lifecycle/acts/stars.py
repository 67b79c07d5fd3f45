"""Star-rated societies (星级学会): the indicator sheet, score imports, star tables and histories.

Imports are all-or-nothing and name every bad row: the self-evaluation
(`star declare`, which creates the declarations as drafts through the
engine), the association's checked scores (`star check`) and the experts'
scores (`star review`). Revoking a star moves its declaration through the
engine (`revoke`), so it is an audited transition with its reason.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection, bindparam, insert, select, update

from lifecycle import kinds
from lifecycle.acts import drafts
from lifecycle.console import (
    Env,
    SafePath,
    common,
    csv_cell,
    echo,
    emit_json,
    encoding_option,
    json_option,
    run_import,
    show_report,
    table,
)
from lifecycle.core import audit, clock
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import (
    Application,
    AuditEvent,
    Call,
    Expert,
    ModelSociety,
    ModelStatus,
    Society,
    StarRecord,
    StarReview,
    StarScore,
    StarStatus,
)
from lifecycle.core.tabular import ID_LIMIT, Float, InputError, Row, cell, csv_writer, read_table
from lifecycle.engine import engine, permissions
from lifecycle.rules import past
from lifecycle.rules.eligibility import barred_societies
from states.outcome import BARS_NEXT_CALLS
from states.star_declaration import ELIGIBLE
from states.star_rating import UNDER_REVIEW


class SelfRow(Row):
    """One indicator of a society's self-evaluation sheet (what `star sheet` writes)."""

    society_id: str = cell(aliases=("society",), limit=ID_LIMIT)
    indicator: str = cell(limit=ID_LIMIT)
    self_score: Float | None = cell(None)
    name: str = cell("", limit=300)
    capacity: str = cell("", limit=300)
    max: str = cell("")
    evidence: str = cell("", aliases=("note",), limit=5000, multiline=True)


class CheckRow(Row):
    """One indicator the association checked (the assessed column)."""

    society_id: str = cell(aliases=("society",), limit=ID_LIMIT)
    indicator: str = cell(limit=ID_LIMIT)
    checked_score: Float = cell(aliases=("score",))
    note: str = cell("", limit=5000, multiline=True)


class StarReviewRow(Row):
    """One expert's score of one indicator of a society."""

    expert_id: str = cell(aliases=("expert",), limit=ID_LIMIT)
    society_id: str = cell(aliases=("society",), limit=ID_LIMIT)
    indicator: str = cell(limit=ID_LIMIT)
    score: Float = cell()
    note: str = cell("", limit=5000, multiline=True)


class StarError(engine.EngineError):
    pass


def _star_call(conn: Connection, call_id: str) -> CallConfig:
    call = engine.load_call(conn, call_id)
    if not kinds.of(call.workflow).rates_stars:
        raise StarError(f"{call_id} is a {call.workflow} call, not a star call")
    return call


def sheet(call: CallConfig, cls: str = "") -> list[dict[str, Any]]:
    """The indicator sheet as rows: capacity, indicator, name, max and weight, for a society of
    class `cls` (its class's sheet, else the call's own): a self-evaluation template."""
    rule = call.star.sheet_for(cls)
    if rule is None:
        raise StarError(f"{call.id} rates only its classes "
                        f"({', '.join(k.id for k in call.star.classes)}), not {cls or 'no class'}")
    return [{"capacity": c.id, "capacity_name": c.name, "indicator": i.id, "name": i.name,
             "name_en": i.name_en, "max": rule.maxima[i.id], "weight": rule.weights[i.id],
             "class": rule.cls} for c in call.star.capacities for i in c.indicators]


def _check_scores(source: str, call: CallConfig, rows: list[tuple[int, dict]], column: str,
                  problems: list[str], classes: dict[str, str] | None = None,
                  required: bool = True) -> None:
    """Unknown indicators, missing scores and scores outside 0..max, each named by row; the
    maximum is the one of the society's class (`classes`: society -> class)."""
    known = call.star.indicators()
    classes = classes or {}
    sheets: dict[str, Any] = {}
    for n, v in rows:
        ind = known.get(v["indicator"])
        if ind is None:
            problems.append(f"{source}: row {n}, column indicator: unknown indicator "
                            f"{v['indicator']!r} (the sheet has {', '.join(known)})")
            continue
        cls = classes.get(v.get("society_id") or "", "")
        if cls not in sheets:
            sheets[cls] = call.star.sheet_for(cls) or call.star.own_sheet()
        top = sheets[cls].maxima[v["indicator"]]
        score = v[column]
        if score is None:
            if required:
                problems.append(f"{source}: row {n}, column {column}: missing score for "
                                f"{v['indicator']}")
        elif not 0 <= score <= top:
            on = f" on the {cls} sheet" if sheets[cls].cls else ""
            problems.append(f"{source}: row {n}, column {column}: {score:g} is outside "
                            f"0..{top:g} for {v['indicator']} ({ind[1].name}){on}")


def _groups(source: str, call: CallConfig, rows: list[tuple[int, dict]], key: tuple[str, ...],
            problems: list[str]) -> dict[tuple, dict[str, tuple[int, dict]]]:
    """Rows grouped by `key`; every group must give each indicator exactly once."""
    groups: dict[tuple, dict[str, tuple[int, dict]]] = defaultdict(dict)
    known = call.star.indicators()
    for n, v in rows:
        g = tuple(v[k] for k in key)
        if v["indicator"] in groups[g]:
            problems.append(f"{source}: row {n}, column indicator: {v['indicator']} repeats row "
                            f"{groups[g][v['indicator']][0]} for {'/'.join(g)}")
        groups[g].setdefault(v["indicator"], (n, v))
    for g, given in groups.items():
        missing = [i for i in known if i not in given]
        if missing:
            first = min(n for n, _ in given.values())
            last = max(n for n, _ in given.values())
            problems.append(f"{source}: rows {first}-{last} ({'/'.join(g)}): no score for "
                            f"indicator(s) {', '.join(missing)}")
    return groups


def import_self_evaluation(conn: Connection, call_id: str, path: str | Path,
                           actor: str, *, encoding: str | None = None) -> dict[str, int]:
    """Declarations with their self-evaluations, one per society, created as drafts."""
    actor = permissions.require(conn, actor, "star.import", engine.load_call(conn, call_id))
    call = _star_call(conn, call_id)
    rows = read_table(path, SelfRow, encoding=encoding)
    return _declare_self_evaluations(conn, call, rows, str(path), Path(path).name, actor)


def self_evaluate(conn: Connection, call_id: str, scores: dict[str, float | None],
                  actor: Any) -> str:
    """A society's own self-evaluation, filled in online (the portal's form): its declaration
    of the star call, created as a draft with one score per indicator; returns its id."""
    call = _star_call(conn, call_id)
    actor = permissions.require(conn, actor, "declaration.edit", call)
    society = actor.society_id
    if not society:
        raise StarError(f"{actor.label} speaks for no society")
    permissions.check_scope(actor, society_id=society)
    drafts.check_window(call)
    rows = [(n, {"society_id": society, "indicator": ind, "self_score": v})
            for n, (ind, v) in enumerate(scores.items(), start=1)]
    _declare_self_evaluations(conn, call, rows, "the self-evaluation form", "online", actor)
    return f"{call_id}-{society}"


def _declare_self_evaluations(conn: Connection, call: CallConfig, rows: list[tuple[int, dict]],
                              source: str, name: str, actor: Any) -> dict[str, int]:
    """Check the rows (indicators, ranges, one sheet per society) and create the drafts."""
    call_id = call.id
    problems: list[str] = []
    societies = {v["society_id"] for _, v in rows}
    found = conn.execute(select(Society.id, Society.name, Society.society_class)
                         .where(Society.id.in_(societies))).all()
    names = {r.id: r.name for r in found}
    classes = {r.id: r.society_class for r in found}
    _check_scores(source, call, rows, "self_score", problems, classes)
    for n, v in rows:
        if v["society_id"] not in names:
            problems.append(f"{source}: row {n}, column society_id: unknown society "
                            f"{v['society_id']!r}")
    groups = _groups(source, call, rows, ("society_id",), problems)
    taken = set(conn.execute(select(Application.society_id)
                             .where(Application.call_id == call_id)).scalars())
    for (society,), given in groups.items():
        if society in taken:
            n = min(n for n, _ in given.values())
            problems.append(f"{source}: row {n}, column society_id: {society} already declared "
                            f"in {call_id}")
    if problems:
        raise InputError(source, problems)
    apps, scores = [], []
    for (society,), given in sorted(groups.items()):
        app_id = f"{call_id}-{society}"
        total = round(sum(v["self_score"] for _, v in given.values()), 1)
        apps.append({"id": app_id, "society_id": society, "category": call.categories[0].id,
                     "society_class": classes[society],
                     "title": f"{names[society]} 星级学会申报", "title_en": "Star rating declaration",
                     "requested_amount": 0, "fields": {"self_total": total}})
        scores += [{"call_id": call_id, "application_id": app_id, "indicator": ind,
                    "self_score": v["self_score"], "checked_score": None, "final_score": None}
                   for ind, (_, v) in given.items()]
    engine.create_applications(conn, call, apps, actor)
    conn.execute(insert(StarScore), scores)
    audit.record(conn, actor, [audit.Event("star_self_evaluation", call_id, a["id"], payload={
        "file": name, "self_total": a["fields"]["self_total"]}) for a in apps])
    return {"declarations": len(apps), "scores": len(scores)}


def _rows(numbers: list[int]) -> str:
    return f"row {numbers[0]}" if len(numbers) == 1 else \
        f"rows {', '.join(map(str, numbers[:6]))}{' ...' if len(numbers) > 6 else ''}"


def _per_society(source: str, found: dict[str, list[int]], problems: list[str]) -> None:
    """One problem line per (message, rows) instead of one per row of the same society."""
    for why, numbers in found.items():
        problems.append(f"{source}: {_rows(numbers)}, column society_id: {why}")


def _apps_by_society(conn: Connection, call_id: str) -> dict[str, Any]:
    return {r.society_id: r for r in conn.execute(
        select(Application.id, Application.society_id, Application.state,
               Application.society_class)
        .where(Application.call_id == call_id))}


def _classes(apps: dict[str, Any]) -> dict[str, str]:
    return {s: a.society_class for s, a in apps.items()}


def _score_sheet(conn: Connection, call_id: str, path: str | Path, actor: str, act: str,
                 row: Any, column: str, encoding: str | None
                 ) -> tuple[Any, str, CallConfig, list, list[str], dict[str, Any]]:
    """What both score imports begin with: the act allowed, the sheet read, its scores checked
    against the indicator sheet of each society's class (problems collected, not raised)."""
    actor = permissions.require(conn, actor, act, engine.load_call(conn, call_id))
    source = str(path)
    call = _star_call(conn, call_id)
    rows = read_table(path, row, encoding=encoding)
    problems: list[str] = []
    apps = _apps_by_society(conn, call_id)
    _check_scores(source, call, rows, column, problems, _classes(apps))
    return actor, source, call, rows, problems, apps


def import_checked(conn: Connection, call_id: str, path: str | Path, actor: str, *,
                   encoding: str | None = None) -> dict[str, int]:
    """The association's checked score per indicator, for declarations past the formal check."""
    actor, source, call, rows, problems, apps = _score_sheet(conn, call_id, path, actor, "star.import",
                                                             CheckRow, "checked_score", encoding)
    seen: dict[tuple[str, str], int] = {}
    found: dict[str, list[int]] = defaultdict(list)
    for n, v in rows:
        a = apps.get(v["society_id"])
        if a is None:
            found[f"{v['society_id']!r} has no declaration in {call_id}"].append(n)
        elif a.state != ELIGIBLE:
            found[f"the declaration of {v['society_id']} is {a.state}; scores are checked "
                  "after the formal check and before review"].append(n)
        k = (v["society_id"], v["indicator"])
        if k in seen:
            problems.append(f"{source}: row {n}, column indicator: {k[1]} of {k[0]} repeats "
                            f"row {seen[k]}")
        seen.setdefault(k, n)
    _per_society(source, found, problems)
    if problems:
        raise InputError(source, problems)
    old = {(r.application_id, r.indicator): r.checked_score for r in conn.execute(
        select(StarScore.application_id, StarScore.indicator, StarScore.checked_score)
        .where(StarScore.call_id == call_id))}
    updates = [{"b_app": apps[v["society_id"]].id, "b_ind": v["indicator"],
                "checked_score": v["checked_score"]} for _, v in rows]
    conn.execute(update(StarScore).where(StarScore.application_id == bindparam("b_app"),
                                         StarScore.indicator == bindparam("b_ind"))
                 .values(checked_score=bindparam("checked_score")), updates)
    by_app: dict[str, dict] = defaultdict(dict)
    for u in updates:
        by_app[u["b_app"]][u["b_ind"]] = {"checked": u["checked_score"],
                                          "old": old.get((u["b_app"], u["b_ind"]))}
    audit.record(conn, actor, [audit.Event("star_check", call_id, a, payload={
        "file": Path(path).name, "scores": s}) for a, s in by_app.items()])
    return {"declarations": len(by_app), "scores": len(updates)}


def import_reviews(conn: Connection, call_id: str, path: str | Path, actor: str, *,
                   encoding: str | None = None) -> dict[str, int]:
    """Experts' scores per indicator for declarations under review; conflicts are refused."""
    actor, source, call, rows, problems, apps = _score_sheet(conn, call_id, path, actor, "star.review",
                                                             StarReviewRow, "score", encoding)
    named = {v["expert_id"] for _, v in rows}
    experts = {e.id: e for e in conn.execute(select(Expert.id, Expert.societies,
                                                    Expert.conflict_societies)
                                             .where(Expert.id.in_(named)))}
    found: dict[str, list[int]] = defaultdict(list)
    for n, v in rows:
        e, a = experts.get(v["expert_id"]), apps.get(v["society_id"])
        if e is None:
            problems.append(f"{source}: row {n}, column expert_id: unknown expert "
                            f"{v['expert_id']!r}")
        elif v["society_id"] in (e.societies or []) + (e.conflict_societies or []):
            problems.append(f"{source}: row {n}, column expert_id: {e.id} belongs to or declared "
                            f"a conflict with {v['society_id']} (回避) and may not review it")
        if a is None:
            found[f"{v['society_id']!r} has no declaration in {call_id}"].append(n)
        elif a.state != UNDER_REVIEW:
            found[f"the declaration of {v['society_id']} is {a.state}, not under review"].append(n)
    _per_society(source, found, problems)
    groups = _groups(source, call, rows, ("expert_id", "society_id"), problems)
    if problems:
        raise InputError(source, problems)
    now = clock.now()
    sheets = {(apps[s].id, e): {ind: v["score"] for ind, (_, v) in given.items()}
              for (e, s), given in groups.items()}
    existing = {(r.application_id, r.expert_id): r for r in conn.execute(
        select(StarReview.id, StarReview.application_id, StarReview.expert_id, StarReview.total)
        .where(StarReview.call_id == call_id))}
    new, changed, events = [], [], []
    for (app_id, expert), scores in sorted(sheets.items()):
        total = round(sum(scores.values()), 1)
        old = existing.get((app_id, expert))
        if old is None:
            new.append({"call_id": call_id, "application_id": app_id, "expert_id": expert,
                        "scores": scores, "total": total, "submitted_at": now})
        else:
            changed.append({"b_id": old.id, "scores": scores, "total": total,
                            "submitted_at": now})
        events.append(audit.Event("star_review", call_id, app_id, payload={
            "expert": expert, "total": total, "scores": scores,
            "old_total": old.total if old else None}))
    if new:
        conn.execute(insert(StarReview), new)
    if changed:
        conn.execute(update(StarReview).where(StarReview.id == bindparam("b_id"))
                     .values(scores=bindparam("scores"), total=bindparam("total"),
                             submitted_at=bindparam("submitted_at")), changed)
    audit.record(conn, actor, events)
    return {"sheets": len(sheets), "declarations": len({a for a, _ in sheets})}


def _status(r: Any, now) -> str:
    return "expired" if r.status == StarStatus.ACTIVE and r.valid_until <= now else r.status


def _row(r: Any, now) -> dict[str, Any]:
    return {"society": r.society_id, "name": getattr(r, "name", None),
            "class": getattr(r, "society_class", None), "call": r.call_id,
            "application": r.application_id, "level": r.level, "stars": "★" * r.level,
            "total": r.total, "reward": r.reward, "change": r.change,
            "previous_level": r.previous_level, "awarded_at": r.awarded_at.isoformat(sep=" "),
            "valid_until": r.valid_until.isoformat(sep=" "), "status": _status(r, now),
            "ended_at": r.ended_at.isoformat(sep=" ") if r.ended_at else None,
            "end_kind": r.end_kind, "end_reason": r.end_reason}


def _model_row(r: Any, now) -> dict[str, Any]:
    status = "expired" if r.status == ModelStatus.ACTIVE and r.valid_until <= now else r.status
    return {"society": r.society_id, "call": r.call_id, "application": r.application_id,
            "rule": r.rule, "named_at": r.named_at.isoformat(sep=" "),
            "valid_until": r.valid_until.isoformat(sep=" "), "status": status,
            "ended_at": r.ended_at.isoformat(sep=" ") if r.ended_at else None,
            "end_reason": r.end_reason}


def model_table(conn: Connection, call_id: str | None = None) -> list[dict[str, Any]]:
    """The model society titles a star call named (with their status now), or (no call)
    every title valid now."""
    now = clock.now()
    stmt = (select(ModelSociety.__table__, Society.name, Society.society_class)
            .join(Society, Society.id == ModelSociety.society_id)
            .order_by(ModelSociety.named_at, ModelSociety.society_id))
    if call_id:
        _star_call(conn, call_id)
        stmt = stmt.where(ModelSociety.call_id == call_id)
    else:
        stmt = stmt.where(ModelSociety.status == ModelStatus.ACTIVE,
                          ModelSociety.valid_until > now)
    return [{**_model_row(r, now), "name": r.name, "class": r.society_class}
            for r in conn.execute(stmt)]


def star_table(conn: Connection, call_id: str | None = None) -> list[dict[str, Any]]:
    """The stars of a call with their current status, or (no call) every star valid now; each
    with its society's class (as declared) and whether it is a model society now."""
    now = clock.now()
    stmt = (select(StarRecord.__table__, Society.name, Application.society_class)
            .join(Society, Society.id == StarRecord.society_id)
            .join(Application, Application.id == StarRecord.application_id)
            .order_by(StarRecord.level.desc(), StarRecord.total.desc(), StarRecord.society_id))
    if call_id:
        _star_call(conn, call_id)
        stmt = stmt.where(StarRecord.call_id == call_id)
    else:
        stmt = stmt.where(StarRecord.status == StarStatus.ACTIVE, StarRecord.valid_until > now)
    models = {r["society"] for r in model_table(conn)}
    return [{**_row(r, now), "model": r.society_id in models} for r in conn.execute(stmt)]


def society_profile(conn: Connection, society_id: str) -> dict[str, Any]:
    """A society: class, standing, current star, model society title, star history, support
    received, every application it ever made, its earlier years brought in, bars."""
    s = conn.execute(select(Society.__table__).where(Society.id == society_id)).first()
    if s is None:
        raise StarError(f"no society {society_id!r}")
    now = clock.now()
    history = [_row(r, now) for r in conn.execute(
        select(StarRecord.__table__).where(StarRecord.society_id == society_id)
        .order_by(StarRecord.awarded_at, StarRecord.id))]
    current = next((h for h in reversed(history) if h["status"] == StarStatus.ACTIVE), None)
    models = [_model_row(r, now) for r in conn.execute(
        select(ModelSociety.__table__).where(ModelSociety.society_id == society_id)
        .order_by(ModelSociety.named_at, ModelSociety.id))]
    model = next((m for m in reversed(models) if m["status"] == ModelStatus.ACTIVE), None)
    apps = [{"id": a.id, "call": a.call_id, "workflow": a.workflow, "category": a.category,
             "class": a.society_class, "title": a.title, "state": a.state,
             "requested": a.requested_amount,
             "granted": a.granted_amount, "score": a.score, "grade": a.assessment_grade,
             "star_level": a.star_level, "to_recover": a.amount_to_recover,
             "decision": a.decision_reason}
            for a in conn.execute(select(Application.__table__, Call.workflow)
                                  .join(Call, Call.id == Application.call_id)
                                  .where(Application.society_id == society_id)
                                  .order_by(Call.created_at, Application.id))]
    support = [{"call": e.call_id, "application": e.application_id, "at": e.at.isoformat(sep=" "),
                **{k: v for k, v in json.loads(e.payload).items() if k != "society"}}
               for e in conn.execute(select(AuditEvent.call_id, AuditEvent.application_id,
                                            AuditEvent.at, AuditEvent.payload)
                                     .where(AuditEvent.action == "support",
                                            AuditEvent.application_id.in_([a["id"] for a in apps]))
                                     .order_by(AuditEvent.seq))] if apps else []
    bar = barred_societies(conn, BARS_NEXT_CALLS, kinds=kinds.history().bars).get(society_id)
    return {"society": {"id": s.id, "name": s.name, "name_en": s.name_en,
                        "institution": s.institution, "class": s.society_class,
                        "annual_inspection_passed": s.annual_inspection_passed,
                        "penalty": s.penalty},
            "current_star": current, "model_society": model, "model_history": models,
            "star_history": history, "support": support, "applications": apps,
            "earlier_years": past.of_society(conn, society_id),
            "barred_from_next_project_call": bar}


def revoke(conn: Connection, society_id: str, kind: str, reason: str,
           actor: str) -> engine.Report:
    """Revoke a society's current star (inspection, penalty or other), with a required reason,
    in the caller's transaction (`conn`)."""
    if not (reason or "").strip():
        raise StarError("a revocation needs a reason (--reason TEXT): it goes into the audit trail")
    rec = conn.execute(select(StarRecord.call_id, StarRecord.application_id,
                              StarRecord.valid_until)
                       .where(StarRecord.society_id == society_id,
                              StarRecord.status == StarStatus.ACTIVE)
                       .order_by(StarRecord.awarded_at.desc())).first()
    if rec is None:
        raise StarError(f"society {society_id} has no current star to revoke")
    report = engine.advance(conn, rec.call_id, "revoke", actor, only=[rec.application_id],
                            options={"kind": kind, "reason": reason.strip()})
    if not report.moved_total:
        raise StarError(f"star of {society_id} not revoked: "
                        f"{report.skipped_ids.get(rec.application_id, 'not possible now')}")
    return report


# --- commands: starfund stars, starfund star ... -----------------------------------------------

@click.command("stars")
@click.argument("call_id", metavar="[CALL]", required=False)
@json_option
@common
def stars_table(env: Env, call_id: str | None) -> None:
    """The star table of a star CALL (with each star's status now), or every star valid now.

    Each star shows its society's class and whether the society holds a model
    society (示范) title now.

    \b
    Example:  starfund stars 2025-star
              starfund stars --json
    """
    with env.engine.connect() as conn:
        if call_id is not None:
            engine.load_call(conn, call_id)  # refuse a call that does not exist
        rows = star_table(conn, call_id)
    if env.as_json:
        return emit_json(rows)
    table(f"stars of {call_id}" if call_id else "stars valid now",
          ["society", "name", "class", "stars", "total", "change", "reward", "valid until",
           "status", "model", "note"],
          [[r["society"], r["name"], r["class"], r["stars"], r["total"],
            r["change"] + (f" (was {r['previous_level']})" if r["previous_level"] else ""),
            f"{r['reward']:,}", r["valid_until"][:10], r["status"],
            "示范" if r["model"] else "", r["end_reason"]] for r in rows])


@click.group("star")
def star_group() -> None:
    """Star rating acts: the indicator sheet, score imports, revocation."""


@star_group.command("sheet")
@click.argument("call_id", metavar="CALL")
@click.option("--csv", "as_csv", is_flag=True,
              help="Write a self-evaluation template (society_id, indicator, self_score ...).")
@click.option("--class", "cls", default="", metavar="CLASS",
              help="The sheet of this class of society (its maxima and weights) [default: the "
                   "call's own].")
@json_option
@common
def star_sheet(env: Env, call_id: str, as_csv: bool, cls: str) -> None:
    """The indicator sheet of a star CALL: indicators under the four capacities, with maxima.

    A call may rate a class of society on its own maxima, weights and
    thresholds (`star.classes`): `--class` prints that class's sheet.

    \b
    Example:  starfund star sheet 2025-star --csv > self-evaluation.csv
              starfund star sheet 2026-star --class 医科
    """
    with env.engine.connect() as conn:
        rows = sheet(_star_call(conn, call_id), cls)
    if as_csv:
        w = csv_writer(sys.stdout)
        w.writerow(["society_id", "capacity", "indicator", "name", "max", "self_score",
                    "evidence"])
        for r in rows:
            w.writerow(["", *map(csv_cell, (r["capacity"], r["indicator"], r["name"])), r["max"],
                        "", ""])
        return
    if env.as_json:
        return emit_json(rows)
    weighted = any(r["weight"] != r["max"] for r in rows)
    table(f"{call_id}: indicator sheet{f' of class {cls}' if rows[0]['class'] else ''} "
          f"({sum(r['weight'] for r in rows):g} points)",
          ["capacity", "indicator", "name", "max"] + (["weight"] if weighted else []),
          [[r["capacity_name"], r["indicator"], f"{r['name']} {r['name_en']}", f"{r['max']:g}"]
           + ([f"{r['weight']:g}"] if weighted else []) for r in rows])


@star_group.command("declare")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_declare(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import societies' self-evaluations into star CALL as declarations (all or nothing).

    Columns: society_id, indicator, self_score; optional name, capacity, max,
    evidence. Every society must score every indicator of the sheet, within its maximum.

    \b
    Example:  starfund star declare 2025-star examples/star-self-evaluation.csv
    """
    r = run_import(env, import_self_evaluation, call_id, file, encoding=encoding)
    echo(f"star declarations: {r['declarations']} drafts created ({r['scores']} scores)")


@star_group.command("check")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_check(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import the association's checked score per indicator (all or nothing).

    Columns: society_id, indicator, checked_score; optional note.

    \b
    Example:  starfund star check 2025-star checked.csv
    """
    r = run_import(env, import_checked, call_id, file, encoding=encoding)
    echo(f"checked scores: {r['scores']} recorded for {r['declarations']} declarations")


@star_group.command("review")
@click.argument("call_id", metavar="CALL")
@click.argument("file", type=SafePath(dir_okay=False))
@encoding_option
@common
def star_review(env: Env, call_id: str, file: str, encoding: str | None) -> None:
    """Import experts' scores per indicator (all or nothing; 回避 enforced).

    Columns: expert_id, society_id, indicator, score; optional note. Each
    expert scores every indicator of each society it reviews.

    \b
    Example:  starfund star review 2025-star expert-scores.xlsx
    """
    r = run_import(env, import_reviews, call_id, file, encoding=encoding)
    echo(f"expert reviews: {r['sheets']} sheets for {r['declarations']} declarations")


@star_group.command("revoke")
@click.argument("society_id", metavar="SOCIETY")
@click.option("--kind", required=True, type=click.Choice(["inspection", "penalty", "other"]),
              help="Why in one word: failed annual inspection, penalty, or other.")
@click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
@json_option
@common
def star_revoke(env: Env, society_id: str, kind: str, reason: str) -> None:
    """Revoke a society's current star (an audited transition of its star declaration).

    For every society that failed its inspection or is penalised at once:
    `starfund advance STAR-CALL review_standing`.

    \b
    Example:  starfund star revoke S012 --kind penalty --reason "2025-11 penalty by the civil affairs bureau"
    """
    with env.engine.begin() as conn:
        report = revoke(conn, society_id, kind, reason, env.actor)
    show_report(env, report)
