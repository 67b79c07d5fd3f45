"""Model societies (示范学会, 示范带动): which starred societies a star call's rule names.

A star call's `star.model.rules` (lifecycle.core.callconfig.ModelRule) each say:
a star of at least `min_level` in this call and in the `in_a_row - 1` star
calls just before it (a star revoked for cause does not count), and, with
`clean_years`, no project of the society terminated or graded its call's fail
grade in the project calls created in the last `clean_years` years. The first
rule a society meets names it. The public notice lists whom the rule would
name (`lifecycle.acts.notice`); the star workflow's `name_models` move names
them after the notice (`states.star_award`).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from lifecycle.core.callconfig import CallConfig, ModelRule
from lifecycle.core.models import Application, AssessmentRecord, Call, StarRecord, StarStatus
from lifecycle.rules import past
from notifications.reasons import Reason


def years_before(t: datetime, years: int) -> datetime:
    try:
        return t.replace(year=t.year - years)
    except ValueError:  # 29 February
        return t.replace(year=t.year - years, day=28)


def earlier_star_calls(conn: Connection, call_id: str, kind: str) -> list[str]:
    """The calls of the star call's own kind created before `call_id`, latest first (earlier
    years brought in by `history import` among them, named as `past.label` names them)."""
    calls = past.merged(conn, conn.execute(select(Call.id, Call.created_at)
                                           .where(Call.workflow == kind)).all(), (kind,))
    me = next((c for c in calls if c.id == call_id), None)
    if me is None:
        return [c.id for c in reversed(calls)]
    return [c.id for c in reversed(calls) if (c.created_at, c.id) < (me.created_at, me.id)]


def failed_projects(conn: Connection, terminated: Iterable[str], since: datetime,
                    societies: set[str], kinds: Iterable[str]) -> dict[str, str]:
    """Per society: a project of a call of `kinds` created since `since` that was terminated
    (in one of the `terminated` states) or had a checkpoint graded its call's fail grade."""
    kinds = tuple(kinds)
    calls = {c.id: (c.config.get("assessment") or {}).get("fail_grade", "不合格")
             for c in conn.execute(select(Call.id, Call.config)
                                   .where(Call.workflow.in_(kinds),
                                          Call.created_at >= since))}
    out: dict[str, str] = {}
    imported = [c for c in past.imported_calls(conn, kinds) if c.created_at >= since]
    for r in past.results(conn, imported):       # earlier years brought in
        if r.society_id in societies and past.failed(r):
            out.setdefault(r.society_id, f"project {r.project} of {past.label(r.year, r.kind)} "
                           + ("was terminated" if r.terminated else f"graded {r.grade}"))
    if not calls:
        return out
    for r in conn.execute(select(Application.society_id, Application.id)
                          .where(Application.call_id.in_(list(calls)),
                                 Application.state.in_(tuple(terminated)))
                          .order_by(Application.id)):
        if r.society_id in societies:
            out.setdefault(r.society_id, f"project {r.id} terminated")
    for r in conn.execute(select(Application.society_id, AssessmentRecord.application_id,
                                 AssessmentRecord.call_id, AssessmentRecord.grade)
                          .join(Application, Application.id == AssessmentRecord.application_id)
                          .where(AssessmentRecord.call_id.in_(list(calls)))
                          .order_by(AssessmentRecord.application_id)):
        if r.society_id in societies and r.grade == calls[r.call_id]:
            out.setdefault(r.society_id, f"project {r.application_id} graded {r.grade}")
    return out


def _meets(rule: ModelRule, level: int, history: list[int | None]) -> bool:
    if level < rule.min_level:
        return False
    before = history[:rule.in_a_row - 1]
    return len(before) == rule.in_a_row - 1 and all(
        lv is not None and lv >= rule.min_level for lv in before)


def named(conn: Connection, call: CallConfig, levels: dict[str, int], now: datetime,
          terminated: Iterable[str], projects: Iterable[str]) -> dict[str, str]:
    """Per society (of `levels`: society -> the level this call gives it): why the call's rule
    names it a model society; societies it does not name are left out. A few queries for the
    whole call. `projects`: the kinds whose projects count (`History.counts_for_models`)."""
    rules = call.star.model.rules
    if not rules or not levels:
        return {}
    societies = set(levels)
    earlier = earlier_star_calls(conn, call.id, call.workflow)
    reach = max(r.in_a_row for r in rules) - 1
    looked = earlier[:reach]
    awarded: dict[tuple[str, str], int] = {}
    if looked:
        for r in conn.execute(select(StarRecord.society_id, StarRecord.call_id, StarRecord.level,
                                     StarRecord.status)
                              .where(StarRecord.call_id.in_(looked))):
            if r.society_id in societies and r.status != StarStatus.REVOKED:
                awarded[(r.society_id, r.call_id)] = r.level
        years = {int(c.split()[0]): c for c in looked if c.endswith(past.SUFFIX)}
        for (society, year), level in past.star_levels(conn, call.workflow, years,
                                                       societies).items():
            awarded[(society, years[year])] = level      # a rating brought in
    clean = max(r.clean_years for r in rules)
    failed = failed_projects(conn, terminated, years_before(now, clean), societies, projects) \
        if clean else {}
    failed_in: dict[int, dict[str, str]] = {clean: failed}
    out: dict[str, str] = {}
    for society, level in sorted(levels.items()):
        history = [awarded.get((society, c)) for c in looked]
        for n, rule in enumerate(rules, start=1):
            if not _meets(rule, level, history):
                continue
            if rule.clean_years:
                if rule.clean_years not in failed_in:
                    failed_in[rule.clean_years] = failed_projects(
                        conn, terminated, years_before(now, rule.clean_years), societies,
                        projects)
                if society in failed_in[rule.clean_years]:
                    continue
            got = list(reversed([call.id] + looked[:rule.in_a_row - 1]))
            calls = Reason.literal(f"{', '.join(got[:-1])} and {got[-1]}" if len(got) > 1
                                   else got[0], "、".join(got))
            clean = Reason("model_clean", years=rule.clean_years) if rule.clean_years else ""
            out[society] = Reason("model_rule", stars="★" * rule.min_level, calls=calls,
                                  clean=clean, n=n)
            break
    return out
