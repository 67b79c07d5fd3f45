"""Assigning experts to applications (专家分配) as an administrative act, audited.

`assign` loads the pool (experts, the call's applications in review, live
loads), asks `lifecycle.rules.assignment.plan` for the pairs (the rule and its
algorithm are there) and writes them all or nothing; experts added to
applications already under review are told at once.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, insert, select

from lifecycle import kinds
from lifecycle.core import audit, clock
from lifecycle.core.deadlines import entry_rows
from lifecycle.core.models import Application, Assignment, Expert, Society
from lifecycle.engine import engine, permissions
from lifecycle.rules.assignment import Applicant, Reviewer, plan
from notifications import contexts
from notifications.queue import Message, enqueue
from states.review import IN_REVIEW, UNDER_REVIEW

LIVE = ("assigned", "submitted")


class AssignmentError(engine.EngineError):
    """The pool cannot satisfy the constraints; nothing was assigned."""


# --- the database side ----------------------------------------------------------------

def load_pool(conn: Connection, call_id: str
              ) -> tuple[list[Reviewer], list[Applicant], dict[str, int], dict[str, Any]]:
    """The experts, the call's applications in review, the live loads and the loaded rows."""
    experts = [Reviewer(e.id, e.institution or "", frozenset(e.disciplines or []),
                        frozenset(e.societies or []), frozenset(e.conflict_societies or []),
                        frozenset(e.conflict_institutions or []))
               for e in conn.execute(select(Expert.__table__))]
    have: dict[str, set[str]] = defaultdict(set)
    barred: dict[str, set[str]] = defaultdict(set)
    base: dict[str, int] = defaultdict(int)
    for a_id, e_id, status in conn.execute(
            select(Assignment.application_id, Assignment.expert_id, Assignment.status)
            .where(Assignment.call_id == call_id)):
        if status in LIVE:
            have[a_id].add(e_id)
            base[e_id] += 1
        else:
            barred[a_id].add(e_id)
    rows = conn.execute(
        select(Application.id, Application.society_id, Application.discipline,
               Application.excluded_experts, Application.state, Application.title,
               Application.title_en, Application.category, Application.requested_amount,
               Society.institution, Society.name.label("society_name"),
               Society.name_en.label("society_name_en"))
        .join(Society, Society.id == Application.society_id)
        .where(Application.call_id == call_id, Application.state.in_(IN_REVIEW))).all()
    apps = [Applicant(r.id, r.society_id, r.institution or "", r.discipline or "",
                      frozenset(r.excluded_experts or []), frozenset(have.get(r.id, ())),
                      frozenset(barred.get(r.id, ()))) for r in rows]
    return experts, apps, dict(base), {r.id: r for r in rows}


def assign(conn: Connection, call_id: str, actor: str, *, per_application: int | None = None,
           max_load: int | None = None, seed: int = 0, dry_run: bool = False) -> dict[str, Any]:
    """Assign experts to every application of the call in review; all or nothing, audited."""
    actor = permissions.require(conn, actor, "review.assign", engine.load_call(conn, call_id))
    call = engine.load_call(conn, call_id)
    need = per_application or call.review.per_application
    limit = max_load or call.review.max_load
    experts, apps, base, rows = load_pool(conn, call_id)
    if not apps:
        raise AssignmentError(f"no application of {call_id} is eligible or under review")
    result = plan(experts, apps, need, limit, seed, base)
    if result.short:
        shown = sorted(result.short.items())
        lines = [f"  {a}: {why}" for a, why in shown[:30]]
        if len(shown) > 30:
            lines.append(f"  ... and {len(shown) - 30} more")
        raise AssignmentError(f"{len(shown)} application(s) of {call_id} cannot get {need} "
                              "experts without a conflict of interest; nothing was assigned\n"
                              + "\n".join(lines))
    loads = [v for v in result.loads.values()]
    summary = {"call": call_id, "assigned": len(result.pairs), "applications": len(apps),
               "per_application": need, "max_load": result.max_load, "seed": seed,
               "load_min": min(loads, default=0), "load_max": max(loads, default=0),
               "discipline_matched": sum(1 for p in result.pairs if p[2]),
               "dry_run": dry_run, "pairs": [{"application": a, "expert": e,
                                              "discipline_match": m}
                                             for a, e, m in result.pairs]}
    if dry_run or not result.pairs:
        return summary
    now = clock.now()
    records = [{"call_id": call_id, "application_id": a, "expert_id": e, "status": "assigned",
                "assigned_at": now} for a, e, _ in result.pairs]
    for start in range(0, len(records), 5000):
        conn.execute(insert(Assignment), records[start:start + 5000])
    audit.record(conn, actor, [audit.Event("assign", call_id, a, payload={
        "expert": e, "discipline_match": m, "seed": seed, "max_load": result.max_load})
        for a, e, m in result.pairs] + [audit.Event("assign_run", call_id, payload={
            k: v for k, v in summary.items() if k != "pairs"})], at=now)
    late = [(rows[a], e) for a, e, _ in result.pairs if rows[a].state == UNDER_REVIEW]
    notify_experts(conn, call, late, now)
    return summary


def notify_experts(conn: Connection, call: Any, pairs: list[tuple[Any, str]], now: Any) -> int:
    """Tell experts added to applications already under review: the message their state sends
    its experts, built as the engine builds it for the experts assigned before."""
    if not pairs:
        return 0
    ids = sorted({e for _, e in pairs})
    experts = {r.id: r for r in conn.execute(
        select(Expert.id, Expert.name, Expert.email, Expert.language).where(Expert.id.in_(ids)))}
    a, s = Application.__table__, Society.__table__
    apps = {r.id: r for r in conn.execute(
        select(a, s.c.name.label("society_name"), s.c.name_en.label("society_name_en"))
        .join(s, s.c.id == a.c.society_id)
        .where(a.c.id.in_(sorted({app.id for app, _ in pairs}))))}
    workflow = kinds.of(call.workflow).workflow
    shared = contexts.common(call, now)
    messages = []
    for pair, eid in pairs:
        app, ex = apps[pair.id], experts[eid]
        state = workflow.state(app.state)
        for note in state.notify:
            if note.to != "experts":
                continue
            context = contexts.state_change(shared, app, state,
                                            entry_rows(call, state, app, {}, now), expert=ex)
            messages.append(Message(note.kind, "expert", ex.id, ex.email,
                                    ex.language or call.language,
                                    f"{note.kind}:{app.id}:late:{ex.id}", context, call.id,
                                    app.id))
    return enqueue(conn, messages, now, call.mail.holds)
