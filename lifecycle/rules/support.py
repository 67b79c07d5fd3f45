"""Steady support for outstanding results (重点支持，激励进步): what earlier results earn.

A project call's `support` rules (lifecycle.core.callconfig.SupportRule) say what
counts: a project whose final checkpoint was graded one of the rule's grades
(优秀) in the last `within_calls` project calls, or a star of at least
`min_level` held now. What it earns: points on the ranking score (`bonus`),
declarations beyond the one per category (`extra_declarations`), a higher
category cap (`cap_percent`), or the outstanding project's continuation funded
without competing (`continue_without_competing`). Effects of different rules
add up; a rule counts once per society however many results earn it.

Computed for a whole batch at once, like the bar on failed societies
(`lifecycle.rules.eligibility`), by the moves' loaders (`states.declaration`,
`states.competition`); what a move relies on is written into its reason and
audited as a `support` event ("+3 points: 优秀 in 2025-project").
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from lifecycle.core.callconfig import CallConfig
from lifecycle.core.models import Application, AssessmentRecord, Call, StarRecord, StarStatus
from lifecycle.rules import past


@dataclass(frozen=True)
class Earned:
    """One effect of one support rule that one society earned, and the result that earned it."""

    rule: str
    effect: str
    """One of callconfig.SUPPORT_EFFECTS."""
    amount: float
    because: str
    """The earlier result, in words: "优秀 in 2025-project", "★★★★ of 2025-star"."""
    source: str | None = None
    """The outstanding project (grade rules): the one a continuing declaration must name."""

    def text(self) -> str:
        """The note written into reasons and the audit trail."""
        if self.effect == "bonus":
            return f"+{self.amount:g} points: {self.because}"
        if self.effect == "extra_declarations":
            return f"+{self.amount:g} declaration(s) per category: {self.because}"
        if self.effect == "cap_percent":
            return f"cap +{self.amount:g}%: {self.because}"
        return f"continues {self.source} without competing: {self.because}"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "effect": self.effect, "amount": self.amount,
                "because": self.because, "source": self.source, "text": self.text()}


class _Graded(NamedTuple):
    """A graded project as the grade rules read it (one brought in from an earlier year)."""

    society_id: str
    application_id: str
    call_id: str
    grade: str


class _Star(NamedTuple):
    society_id: str
    call_id: str
    level: int


def _last_checkpoint(config: dict[str, Any]) -> str:
    """The id of a stored call's last checkpoint (its final acceptance)."""
    cps = (config.get("assessment") or {}).get("checkpoints") or []
    return cps[-1]["id"] if cps else "final"


def _prior_calls(conn: Connection, call: CallConfig, kinds: Iterable[str]) -> list[Any]:
    """The calls of `kinds` created before `call`, oldest first (all if it is not stored)."""
    kinds = tuple(kinds)
    calls = past.merged(conn, conn.execute(select(Call.id, Call.config, Call.created_at)
                                           .where(Call.workflow.in_(kinds))).all(), kinds)
    me = conn.execute(select(Call.created_at).where(Call.id == call.id)).scalar()
    if me is None:
        return list(calls)
    return [c for c in calls if (c.created_at, c.id) < (me, call.id)]


def earned(conn: Connection, call: CallConfig, societies: Iterable[str] | None, now: datetime,
           kinds: Iterable[str]) -> dict[str, list[Earned]]:
    """Per society (of `societies`, or every one): what the call's support rules give it;
    grades count in earlier calls of `kinds` (`History.earns_support`).

    One query for the graded projects of the earlier calls the rules look at and one for
    the stars held now, whatever the batch size.
    """
    if not call.support:
        return {}
    wanted = set(societies) if societies is not None else None
    out: dict[str, list[Earned]] = defaultdict(list)
    grade_rules = [r for r in call.support if r.earned_by == "grade"]
    star_rules = [r for r in call.support if r.earned_by == "star"]
    if grade_rules:
        prior = _prior_calls(conn, call, kinds)
        reach = max(r.within_calls for r in grade_rules)
        looked = prior[-reach:]
        position = {c.id: len(prior) - i for i, c in enumerate(prior)}  # 1: the latest call
        final = {c.id: _last_checkpoint(c.config) for c in looked}
        graded: list[Any] = []
        if looked:
            graded = [r for r in conn.execute(
                select(Application.society_id, AssessmentRecord.application_id,
                       AssessmentRecord.call_id, AssessmentRecord.checkpoint,
                       AssessmentRecord.grade)
                .join(Application, Application.id == AssessmentRecord.application_id)
                .where(AssessmentRecord.call_id.in_(list(final)))
                .order_by(AssessmentRecord.call_id, AssessmentRecord.application_id))
                if r.checkpoint == final[r.call_id]
                and (wanted is None or r.society_id in wanted)]
            graded += [_Graded(r.society_id, r.project, past.label(r.year, r.kind), r.grade)
                       for r in past.results(conn, looked)     # earlier years brought in
                       if r.grade and (wanted is None or r.society_id in wanted)]
        for rule in grade_rules:
            hits = [r for r in graded if r.grade in rule.grades
                    and position[r.call_id] <= rule.within_calls]
            firsts: dict[str, Any] = {}
            for r in sorted(hits, key=lambda r: (position[r.call_id], r.application_id)):
                firsts.setdefault(r.society_id, r)  # the latest outstanding project
            for society, r in firsts.items():
                because = f"{r.grade} in {r.call_id}"
                for effect in rule.gives():
                    if effect == "continue_without_competing":
                        continue
                    out[society].append(Earned(rule.id, effect, float(getattr(rule, effect)),
                                               because, r.application_id))
            if rule.continue_without_competing:
                for r in hits:
                    out[r.society_id].append(Earned(rule.id, "continue_without_competing", 1.0,
                                                    f"{r.grade} in {r.call_id}",
                                                    r.application_id))
    if star_rules:
        held: dict[str, Any] = {
            society: _Star(society, past.label(year, kind), level)     # brought in, still held
            for society, (level, year, kind) in past.held_stars(conn, now, wanted).items()}
        for r in conn.execute(select(StarRecord.society_id, StarRecord.call_id, StarRecord.level)
                              .where(StarRecord.status == StarStatus.ACTIVE,
                                     StarRecord.valid_until > now)
                              .order_by(StarRecord.awarded_at)):
            if wanted is None or r.society_id in wanted:
                held[r.society_id] = r
        for rule in star_rules:
            for society, r in held.items():
                if r.level >= (rule.min_level or 1):
                    because = f"{'★' * r.level} of {r.call_id}"
                    for effect in rule.gives():
                        out[society].append(Earned(rule.id, effect,
                                                   float(getattr(rule, effect)), because))
    return dict(out)


def of_effect(notes: Iterable[Earned], effect: str) -> tuple[float, list[Earned]]:
    """The sum of one effect over the rules a society earned, and the notes that make it."""
    picked = [e for e in notes if e.effect == effect]
    return sum(e.amount for e in picked), picked


def continuation(notes: Iterable[Earned], continues: str | None) -> Earned | None:
    """The note that lets a declaration continuing project `continues` skip the competition."""
    if not continues:
        return None
    return next((e for e in notes if e.effect == "continue_without_competing"
                 and e.source == continues), None)
