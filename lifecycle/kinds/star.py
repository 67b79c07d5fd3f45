"""星级学会评定（以奖代补）: star-rated societies, reward in lieu of subsidy.

A society files its self-evaluation on the call's indicator sheet, the association checks it,
experts rate, a star level follows from the thresholds, the list passes 公示, and stars carry
a reward and are managed dynamically (kept, raised, lowered, lost, revoked; model societies).

History policy: a star call's results bar nobody from project calls and earn no grade-based
support (a star held is read from the star records, not from calls); a star revoked for cause
bars the society from the next star calls (`star.bar_calls_after_revocation`), counted over
calls of this kind.
"""
from __future__ import annotations

from typing import Any

from lifecycle.kinds.base import Kind
from states import names as S
from states import star_award, star_declaration, star_rating
from states.names import DRAFT
from states.workflows import Workflow

WORKFLOW = Workflow(
    name="star",
    title="星级学会评定（以奖代补） star-rated societies (reward in lieu of subsidy)",
    initial=DRAFT,
    stages=(star_declaration, star_rating, star_award),
)


def one_category(data: dict[str, Any]) -> dict[str, Any]:
    """A star call rates whole societies: one implicit category unless the file names one."""
    if "categories" in data:
        return data
    return {**data, "categories": [{"id": "star", "name": "星级学会评定",
                                    "name_en": "Star rating", "cap": 10_000_000}]}


KIND = Kind(
    name="star",
    title=WORKFLOW.title,
    workflow=WORKFLOW,
    sections=frozenset({"star"}),
    hints={"classes": "a star call rates by class under star.classes"},
    prepare=one_category,
    rates_stars=True,
    funnel=(S.DECLARED, S.ELIGIBLE, S.RATED, S.IN_NOTICE, S.STARRED),
    portal=("star_sheet",),
    example="examples/star-call.toml",
)
