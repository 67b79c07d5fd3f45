"""One transitions Machine per workflow, built from the stage tables in `states/`.

The Machine is the workflow's graph: which triggers exist, from which states,
to which destinations, in which order of preference, and its diagram. It is
shared by every application; applications are rows, never Machine models
(invariant 6), and the engine evaluates the moves' conditions on whole batches.
"""
from __future__ import annotations

from functools import cache

from transitions.extensions import GraphMachine

from lifecycle import kinds
from lifecycle.core.errors import NotFound
from states.spec import Move
from states.workflows import Workflow, validate


class UnknownWorkflow(NotFound):
    pass


class WorkflowMachine:
    """A workflow's transitions Machine, plus the stage records behind each transition."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = validate(workflow)  # transitions itself accepts unknown destinations
        self.machine = GraphMachine(
            states=[s.name for s in workflow.states], initial=workflow.initial,
            auto_transitions=False, graph_engine="mermaid", show_conditions=True,
            title=workflow.title)
        self._moves: dict[tuple[str, str], list[Move]] = {}
        for move in workflow.moves:
            self.machine.add_transition(move.trigger, list(move.sources), move.dest,
                                        conditions=[c.__name__ for c in move.conditions])
            for source in move.sources:
                self._moves.setdefault((move.trigger, source), []).append(move)

    @property
    def triggers(self) -> list[str]:
        return list(self.machine.events)

    def moves_for(self, trigger: str) -> dict[str, list[Move]]:
        """Per source state, the moves `trigger` may take, in order of preference."""
        event = self.machine.events[trigger]
        return {source: self._moves[(trigger, source)] for source in event.transitions}

    def triggers_from(self, states: set[str] | list[str]) -> list[str]:
        """The triggers some application in one of `states` could take."""
        return sorted(set(self.machine.get_triggers(*states))) if states else []

    def mermaid(self) -> str:
        return self.machine.get_graph().draw(None)

    def text(self) -> str:
        lines = [f"workflow {self.workflow.name}: {self.workflow.title}", "", "states:"]
        for s in self.workflow.states:
            extra = []
            if s.notify:
                extra.append("notifies " + ", ".join(f"{n.kind}->{n.to}" for n in s.notify))
            if s.schedule:
                extra.append("schedules " + ", ".join(f"{d.kind}({d.fires})" for d in s.schedule))
            if s.final:
                extra.append("final")
            lines.append(f"  {s.name:<18} {s.label}" + (f"  [{'; '.join(extra)}]" if extra else ""))
        lines += ["", "transitions (first matching wins):"]
        for m in self.workflow.moves:
            cond = " if " + " and ".join(c.__name__ for c in m.conditions) if m.conditions else ""
            sets = "; sets " + ", ".join(d.__name__ for d in m.decide) if m.decide else ""
            lines.append(f"  {m.trigger:<18} {','.join(m.sources)} -> {m.dest}{cond}{sets}"
                         f"  (by {'/'.join(m.who)})")
        return "\n".join(lines)


@cache
def for_workflow(name: str) -> WorkflowMachine:
    """The shared Machine of workflow `name`, built once per process."""
    try:
        return WorkflowMachine(kinds.of(name).workflow)
    except kinds.UnknownKind as e:
        raise UnknownWorkflow(str(e)) from None
