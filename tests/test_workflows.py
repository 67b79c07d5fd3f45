"""The workflows as data: validate() catches a broken graph, conditions are pure checks.

A workflow that fails validate() cannot load (it is validated when states.workflows is
imported); the real ones validate; every message kind a state sends has its templates.
"""
from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from lifecycle.engine.machine import WorkflowMachine
from lifecycle.kinds import KINDS
from states.roles import APPROVER, SCHEDULER
from states.spec import Move, Notify, Schedule, State
from states.workflows import InvalidWorkflow, Workflow, problems, validate

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "notifications" / "templates"


def _due(call, entered: datetime) -> datetime:
    return entered


def _workflow(states, moves, initial: str = "a") -> Workflow:
    stage = ModuleType("broken_stage")
    stage.STATES, stage.MOVES = tuple(states), tuple(moves)
    return Workflow("broken", "a workflow under test", initial, (stage,))


A = State("a", "A", schedule=(Schedule("a_due", _due, fires="go"),))
B = State("b", "B", notify=(Notify("b_entered"),))
C = State("c", "C", final=True)
GO = Move("go", ("a",), "b", who=(APPROVER, SCHEDULER))
END = Move("end", ("b",), "c", who=(APPROVER,))


def test_the_real_workflows_validate():
    for workflow in (k.workflow for k in KINDS.values()):
        assert problems(workflow) == [], workflow.name
        assert validate(workflow) is workflow


def test_a_sound_small_workflow_validates():
    assert problems(_workflow((A, B, C), (GO, END))) == []


@pytest.mark.parametrize("states, moves, expected", [
    ((A, B, C), (GO, END, Move("go", ("b",), "nowhere", who=(APPROVER,))),
     "move go (b -> nowhere): destination nowhere is not a state of the workflow"),
    ((A, B, C), (GO, END, Move("back", ("elsewhere",), "a", who=(APPROVER,))),
     "move back (elsewhere -> a): source elsewhere is not a state of the workflow"),
    ((A, B, C, State("d", "D")), (GO, END),
     "state d is not reachable from the initial state a"),
    ((A, B, C), (GO, END, Move("reopen", ("c",), "a", who=(APPROVER,))),
     "move reopen (c -> a): leaves final state c (a final state has no exits)"),
    ((A, B, C), (GO, Move("end", ("b",), "c", who=())),
     "move end (b -> c): says nobody may fire it (empty who)"),
    ((A, B, C), (GO, Move("end", ("b",), "c", who=("clerk",))),
     "move end (b -> c): unknown role 'clerk' in who (officer, coordinator, approver, finance, auditor, society, expert, scheduler, service)"),
    ((State("a", "A", schedule=(Schedule("a_due", _due, fires="gone"),)), B, C), (GO, END),
     "state a schedules a_due firing gone, which is no trigger of the workflow"),
    ((State("a", "A", schedule=(Schedule("a_due", _due, fires="end"),)), B, C), (GO, END),
     "state a schedules a_due firing end, but no move of end from a may be fired by the "
     "scheduler"),
    ((A, B, C), (Move("go", ("a",), "b", who=(APPROVER,)), END),
     "state a schedules a_due firing go, but no move of go from a may be fired by the "
     "scheduler"),
    ((A, State("b", "B", notify=(Notify("b_entered", to="everyone"),)), C), (GO, END),
     "state b notifies b_entered to unknown recipient 'everyone' (society, experts)"),
    ((A, B, C, State("b", "B again")), (GO, END), "state b is defined 2 times"),
], ids=["unknown-dest", "unknown-source", "unreachable", "final-exit", "nobody-fires",
        "unknown-role", "schedule-unknown-trigger", "schedule-no-move-from-state",
        "schedule-not-for-scheduler", "unknown-recipient", "duplicate-state"])
def test_validate_names_each_problem(states, moves, expected):
    workflow = _workflow(states, moves)
    assert expected in problems(workflow)
    with pytest.raises(InvalidWorkflow) as raised:
        validate(workflow)
    assert expected in str(raised.value)
    with pytest.raises(InvalidWorkflow):   # transitions alone would accept an unknown destination
        WorkflowMachine(workflow)


def test_validate_names_every_problem_at_once():
    workflow = _workflow((A, B, C, State("d", "D")),
                         (GO, Move("end", ("b",), "c", who=()), Move("go", ("b",), "nowhere", who=(APPROVER,)),
                          Move("reopen", ("c",), "a", who=(APPROVER,))), initial="a")
    with pytest.raises(InvalidWorkflow) as raised:
        validate(workflow)
    assert len(raised.value.problems) == 4
    for problem in raised.value.problems:
        assert problem in str(raised.value)


def test_unknown_initial_state():
    assert "initial state start is not a state of the workflow" in \
        problems(_workflow((A, B, C), (GO, END), initial="start"))


def test_a_workflow_that_fails_validate_cannot_load():
    """Validated at import: a stage table with a move to nowhere stops the package loading."""
    code = ("import states.review as r\n"
            "from states.spec import Move\n"
            "r.MOVES = r.MOVES + (Move('close_review', ('reviewed',), 'nowhere', who=('approver',)),)\n"
            "import lifecycle.kinds\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode != 0
    assert "InvalidWorkflow: workflow project is invalid" in done.stderr
    assert "destination nowhere is not a state of the workflow" in done.stderr


def test_every_notified_kind_has_templates_in_both_languages():
    kinds = {n.kind for w in (k.workflow for k in KINDS.values()) for s in w.states for n in s.notify}
    missing = [f"{lang}/{kind}.txt" for kind in sorted(kinds) for lang in ("zh", "en")
               if not (TEMPLATES / lang / f"{kind}.txt").is_file()]
    assert kinds and not missing, missing


# --- conditions are pure ------------------------------------------------------------

MUTATORS = {"add", "append", "extend", "update", "setdefault", "pop", "popitem", "remove",
            "discard", "clear", "insert", "sort"}


def _writes(fn, seen: set) -> list[str]:
    """What `fn` (and the states/ functions it calls by name) writes: stores into a
    subscript or attribute, or calls of a mutating method."""
    fn = inspect.unwrap(fn)
    if fn in seen:
        return []
    seen.add(fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    scope = {**vars(inspect.getmodule(fn)),
             **inspect.getclosurevars(fn).nonlocals}
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        found += [f"{fn.__name__}: writes {ast.unparse(t)}" for t in targets
                  if isinstance(t, (ast.Subscript, ast.Attribute))]
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in MUTATORS:
                found.append(f"{fn.__name__}: calls {ast.unparse(f)}")
            elif isinstance(f, ast.Name) and inspect.isfunction(scope.get(f.id)) and \
                    scope[f.id].__module__.startswith("states."):
                found += [f"{fn.__name__} -> {w}" for w in _writes(scope[f.id], seen)]
    return found


def _moves():
    return [(w.name, m) for w in (k.workflow for k in KINDS.values()) for m in w.moves]


def test_conditions_write_nothing():
    impure = [f"{name} {m.trigger} -> {m.dest}: {w}" for name, m in _moves()
              for c in m.conditions for w in _writes(c, set())]
    assert not impure, "conditions must only check (put what a move decides in Move.decide):\n" \
        + "\n".join(impure)


def test_only_the_engine_fills_the_decided_values():
    """Loaders and decide functions leave ctx.updates to the engine (decide returns values)."""
    written = [f"{name} {m.trigger}: {w}" for name, m in _moves()
               for f in (*m.prepare, *m.prepare_chunk, *m.decide) for w in _writes(f, set()) if "updates" in w]
    assert not written, "\n".join(written)
