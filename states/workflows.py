"""A workflow is its stage tables, listed in order; `validate` checks the graph they make.

The kinds of call (`lifecycle.kinds`) compose the workflows; each is validated when its kind
is registered, so one that fails cannot load. A stage is reusable: its moves from states the
workflow does not have are left out (公示 follows ranking in a project call and an approval
on the pass mark in a grant call), and what is left must still make a sound graph. That the message kinds its states send have
templates in every language is checked by `starfund templates check` and the tests
(templates are files of `notifications`, which `states` does not import).
"""
from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, replace
from functools import cached_property
from types import ModuleType

from notifications.reasons import term
from states import names
from states.roles import ROLE_NAMES, SCHEDULER
from states.spec import Move, State

ROLES = ROLE_NAMES
RECIPIENTS = ("society", "experts")
ACTIONS = ("advance", "remind")
KNOWN = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
"""Every state name (`states.names`): a move from a name outside it is a typo, kept so
`validate` names it; a move from a known state the workflow lacks is left out."""


@dataclass(frozen=True)
class Workflow:
    name: str
    title: str
    initial: str
    stages: tuple[ModuleType, ...]

    @cached_property
    def states(self) -> tuple[State, ...]:
        return tuple(s for stage in self.stages for s in stage.STATES)

    @cached_property
    def moves(self) -> tuple[Move, ...]:
        """The stages' moves, each from the sources this workflow has (none left: no move)."""
        have = {s.name for s in self.states}
        out = []
        for m in (m for stage in self.stages for m in stage.MOVES):
            sources = tuple(s for s in m.sources if s in have or s not in KNOWN)
            if sources:
                out.append(m if sources == m.sources else replace(m, sources=sources))
        return tuple(out)

    @cached_property
    def digest(self) -> str:
        """The definition's version: a digest of its states and moves (names, sources,
        destinations, conditions, who), so a call can keep the definition it started with."""
        parts = [f"initial {self.initial}"]
        parts += [f"state {s.name} final={s.final} notify={[(n.kind, n.to) for n in s.notify]} "
                  f"schedule={[(d.kind, d.fires, d.action, d.per) for d in s.schedule]}"
                  for s in self.states]
        parts += [f"move {m.trigger} {','.join(m.sources)}->{m.dest} "
                  f"if {','.join(c.__name__ for c in m.conditions)} by {','.join(m.who)}"
                  for m in self.moves]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def outline(self) -> set[str]:
        """The definition as lines (one per state and move), to name what differs."""
        return ({f"state {s.name}" for s in self.states}
                | {f"move {m.trigger}: {','.join(m.sources)} -> {m.dest}" for m in self.moves})

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)

    def trigger_label(self, trigger: str) -> str:
        """A trigger's label, "中文 English", as the first of its stages that defines it
        declares it (`TRIGGERS` beside its moves); the trigger itself when none does."""
        return next((stage.TRIGGERS[trigger] for stage in self.stages
                     if trigger in getattr(stage, "TRIGGERS", {})), trigger)

    def deadline_label(self, kind: str) -> str:
        """A deadline's label, "中文 English", from its stage's `DEADLINES`: a reminder
        (`kind:remind:7d`) and a deadline per value (`report_due:中期`) are labelled from the
        deadline they belong to; the kind itself when no stage labels it."""
        base, _, rest = kind.partition(":")
        label = next((stage.DEADLINES[base] for stage in self.stages
                      if base in getattr(stage, "DEADLINES", {})), None)
        if label is None:
            return kind
        zh, _, en = label.partition(" ")
        if rest.startswith("remind:"):
            offset = rest.removeprefix("remind:")
            n, unit = offset[:-1], offset[-1:]
            zh_unit, en_unit = _UNITS.get(unit, (unit, unit))
            return (f"{zh}提醒（提前{n}{zh_unit}） {en}: a reminder {n} {en_unit}"
                    f"{'' if n == '1' else 's'} before")
        if rest:
            return f"{zh}（{rest}） {en} ({term(rest, 'en')})"
        return label


_UNITS = {"d": ("天", "day"), "h": ("小时", "hour"), "m": ("分钟", "minute"), "s": ("秒", "second")}


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

