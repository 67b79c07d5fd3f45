"""The workflows, each composed from stage tables. Add a workflow by listing its stages."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from states import (
    assessment,
    award,
    competition,
    declaration,
    outcome,
    review,
    star_award,
    star_declaration,
    star_rating,
)
from states.spec import Move, State


@dataclass(frozen=True)
class Workflow:
    name: str
    title: str
    initial: str
    stages: tuple[ModuleType, ...]

    @property
    def states(self) -> tuple[State, ...]:
        return tuple(s for stage in self.stages for s in stage.STATES)

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(m for stage in self.stages for m in stage.MOVES)

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)


PROJECT = Workflow(
    name="project",
    title="重点活动项目资助 key-activity project funding",
    initial="draft",
    stages=(declaration, review, competition, award, assessment, outcome),
)

STAR = Workflow(
    name="star",
    title="星级学会评定（以奖代补） star-rated societies (reward in lieu of subsidy)",
    initial="draft",
    stages=(star_declaration, star_rating, star_award),
)

WORKFLOWS: dict[str, Workflow] = {w.name: w for w in (PROJECT, STAR)}
