"""Who may not apply (资格): societies barred by an earlier project's failure.

A terminated project, or a checkpoint graded with its call's fail grade, bars
the society from that call's next `assessment.bar_calls_after_failure` project
calls. The formal check of a declaration (`states.declaration`,
`states.star_declaration`) and a society's profile read it from here.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application, AssessmentRecord, Call
from lifecycle.rules import past
from notifications.reasons import Reason


def barred_societies(conn: Connection, terminated: Iterable[str], call: CallConfig | None = None,
                     *, kinds: Iterable[str]) -> dict[str, Reason]:
    """Societies barred by a terminated or failed project of an earlier call of `kinds` (the
    kinds whose failures bar: `History.bars`).

    Such a call bars for its own `assessment.bar_calls_after_failure` later
    calls of those kinds, counted in order of creation; a call of another kind (a star
    call) is barred as the next such call would be. Failed: any checkpoint
    graded with the call's fail grade, even if an override kept the funding.
    Terminated: in one of the `terminated` states (the outcome stage names them).
    Earlier years brought in by `history import` count as earlier calls (`past`).
    """
    kinds = tuple(kinds)
    calls = past.merged(conn, conn.execute(select(Call.id, Call.config, Call.created_at)
                                           .where(Call.workflow.in_(kinds))).all(), kinds)
    if call is None:  # the next project call, not yet created
        prior = list(calls)
    else:
        me = conn.execute(select(Call.created_at).where(Call.id == call.id)).scalar()
        if me is None:
            return {}
        prior = [c for c in calls if (c.created_at, c.id) < (me, call.id)]
    here = len(prior)
    reach = {c.id: (c.config.get("assessment") or {}).get("bar_calls_after_failure", 2)
             for c in prior}
    fail = {c.id: (c.config.get("assessment") or {}).get("fail_grade", "不合格") for c in prior}
    names = {(c.id, cp.get("id")): Reason.literal(cp.get("name_en") or cp.get("name") or "",
                                                  cp.get("name") or cp.get("id"))
             for c in prior for cp in (c.config.get("assessment") or {}).get("checkpoints") or []}
    barring = [c.id for i, c in enumerate(prior) if here - i <= reach[c.id]]
    if not barring:
        return {}
    out: dict[str, Reason] = {}
    for r in past.results(conn, [c for c in prior if c.id in barring]):
        if past.failed(r):     # an earlier year's result, brought in (`history import`)
            call_id = past.label(r.year, r.kind)
            out.setdefault(r.society_id, Reason(
                "barred_terminated", app=r.project, call=call_id, calls=reach[call_id])
                if r.terminated else Reason(
                "barred_failed", app=r.project, call=call_id, checkpoint=Reason.literal(
                    "final acceptance", "结题验收"), grade=r.grade, calls=reach[call_id]))
    for r in conn.execute(select(Application.society_id, Application.id, Application.call_id)
                          .where(Application.call_id.in_(barring),
                                 Application.state.in_(tuple(terminated)))
                          .order_by(Application.id)):
        out.setdefault(r.society_id, Reason("barred_terminated", app=r.id, call=r.call_id,
                                            calls=reach[r.call_id]))
    for r in conn.execute(select(Application.society_id, AssessmentRecord.application_id,
                                 AssessmentRecord.call_id, AssessmentRecord.checkpoint,
                                 AssessmentRecord.grade)
                          .join(Application, Application.id == AssessmentRecord.application_id)
                          .where(AssessmentRecord.call_id.in_(barring))
                          .order_by(AssessmentRecord.application_id)):
        if r.grade == fail[r.call_id]:
            out.setdefault(r.society_id, Reason(
                "barred_failed", app=r.application_id, call=r.call_id,
                checkpoint=names.get((r.call_id, r.checkpoint), r.checkpoint),
                grade=r.grade, calls=reach[r.call_id]))
    return out
