"""The workflows, each composed from stage tables. Add a workflow by listing its stages.

`validate` checks a workflow's graph; every workflow here is validated when this module
is imported, so one that fails cannot load. That the message kinds its states send have
templates in every language is checked by `starfund templates check` and the tests
(templates are files of `notifications`, which `states` does not import).
"""
from __future__ import annotations

from collections import deque
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
from states.names import DRAFT
from states.roles import ROLE_NAMES, SCHEDULER
from states.spec import Move, State

ROLES = ROLE_NAMES
RECIPIENTS = ("society", "experts")
ACTIONS = ("advance", "remind")


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


class InvalidWorkflow(ValueError):
    """A workflow's graph is wrong; `problems` names each fault."""

    def __init__(self, workflow: Workflow, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"workflow {workflow.name} is invalid:\n  " + "\n  ".join(problems))


def _move(m: Move) -> str:
    return f"move {m.trigger} ({','.join(m.sources)} -> {m.dest})"


def problems(workflow: Workflow) -> list[str]:
    """Everything wrong with the workflow's graph (empty when it is sound):

    - state names are unique and the initial state exists;
    - every move's sources and destination are states of the workflow;
    - a final state has no exits;
    - every state is reachable from the initial one;
    - every move says who may fire it (a non-empty `who` of known roles);
    - every notification goes to a known recipient;
    - every scheduled deadline has a known action and fires a trigger of the workflow,
      one the scheduler may fire from the state that schedules it (action "advance").
    """
    out: list[str] = []
    names = [s.name for s in workflow.states]
    known = set(names)
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"state {name} is defined {names.count(name)} times")
    if workflow.initial not in known:
        out.append(f"initial state {workflow.initial} is not a state of the workflow")
    final = {s.name for s in workflow.states if s.final}
    for m in workflow.moves:
        for source in m.sources:
            if source not in known:
                out.append(f"{_move(m)}: source {source} is not a state of the workflow")
            elif source in final:
                out.append(f"{_move(m)}: leaves final state {source} (a final state has no exits)")
        if m.dest not in known:
            out.append(f"{_move(m)}: destination {m.dest} is not a state of the workflow")
        if not m.who:
            out.append(f"{_move(m)}: says nobody may fire it (empty who)")
        for role in m.who:
            if role not in ROLES:
                out.append(f"{_move(m)}: unknown role {role!r} in who ({', '.join(ROLES)})")
    reached, todo = {workflow.initial}, deque([workflow.initial])
    while todo:
        here = todo.popleft()
        for m in workflow.moves:
            if here in m.sources and m.dest not in reached:
                reached.add(m.dest)
                todo.append(m.dest)
    for name in names:
        if name not in reached and workflow.initial in known:
            out.append(f"state {name} is not reachable from the initial state {workflow.initial}")
    triggers = {m.trigger for m in workflow.moves}
    for s in workflow.states:
        for note in s.notify:
            if note.to not in RECIPIENTS:
                out.append(f"state {s.name} notifies {note.kind} to unknown recipient {note.to!r} "
                           f"({', '.join(RECIPIENTS)})")
        for d in s.schedule:
            if d.action not in ACTIONS:
                out.append(f"state {s.name} schedules {d.kind} with unknown action {d.action!r} "
                           f"({', '.join(ACTIONS)})")
            if d.fires not in triggers:
                out.append(f"state {s.name} schedules {d.kind} firing {d.fires}, "
                           "which is no trigger of the workflow")
            elif d.action == "advance" and not any(
                    d.fires == m.trigger and s.name in m.sources and SCHEDULER in m.who
                    for m in workflow.moves):
                out.append(f"state {s.name} schedules {d.kind} firing {d.fires}, but no move of "
                           f"{d.fires} from {s.name} may be fired by the {SCHEDULER}")
    return out


def validate(workflow: Workflow) -> Workflow:
    """The workflow, if its graph is sound; else InvalidWorkflow naming every problem."""
    found = problems(workflow)
    if found:
        raise InvalidWorkflow(workflow, found)
    return workflow


PROJECT = Workflow(
    name="project",
    title="重点活动项目资助 key-activity project funding",
    initial=DRAFT,
    stages=(declaration, review, competition, award, assessment, outcome),
)

STAR = Workflow(
    name="star",
    title="星级学会评定（以奖代补） star-rated societies (reward in lieu of subsidy)",
    initial=DRAFT,
    stages=(star_declaration, star_rating, star_award),
)

WORKFLOWS: dict[str, Workflow] = {w.name: validate(w) for w in (PROJECT, STAR)}
