"""The house's layers: no state name spelled outside states/, imports in one direction, no cycles.

A state name is flagged wherever a string literal outside states/ equals one, except where
the literal is evidently not a value of the state column but a word of another vocabulary
that happens to be spelled the same (an outcome proposal's field `proposed`, the calendar's
date `assessment_due`, a star record's status `revoked`):

- a field name: the key of a dict display or the index of a subscript (`{"proposed": ...}`,
  `row["proposed"]`); a state as a value is still flagged;
- a label among labels: one string of a list or tuple display of strings that also holds a
  word that is no state (a table's header row, the calendar's date fields); a set of states
  holds states only;
- a member of an Enum class: another vocabulary declared once as its own type
  (`lifecycle.core.models.StarStatus`).
"""
from __future__ import annotations

import ast
from pathlib import Path

from lifecycle.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent
STATE_NAMES = {s.name for w in (k.workflow for k in KINDS.values()) for s in w.states}
OUTSIDE_STATES = [ROOT / "cli.py", *sorted((ROOT / "lifecycle").rglob("*.py")),
                  *sorted((ROOT / "notifications").rglob("*.py")),
                  *sorted((ROOT / "web").rglob("*.py"))]


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _not_state_values(tree: ast.AST) -> set[int]:
    """The ids of string constants that are field names, labels among labels, or Enum members."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            out.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript):
            out.add(id(node.slice))
        elif isinstance(node, (ast.List, ast.Tuple)):
            if node.elts and all(_is_str(e) for e in node.elts) and \
                    any(e.value not in STATE_NAMES for e in node.elts):
                out.update(id(e) for e in node.elts)
        elif isinstance(node, ast.ClassDef) and any(
                (b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")).endswith("Enum")
                for b in node.bases):
            out.update(id(s.value) for s in node.body if isinstance(s, ast.Assign))
    return out


def _literals(source: str):
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    other = _not_state_values(tree)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings and id(node) not in other
                and node.value in STATE_NAMES):
            yield node.lineno, node.value


def test_no_state_name_is_spelled_outside_states():
    found = [f"{p.relative_to(ROOT)}:{line}: {value!r}"
             for p in OUTSIDE_STATES if "migrations" not in p.parts
             for line, value in _literals(p.read_text(encoding="utf-8"))]
    assert not found, "state names spelled outside states/ (use the stage's named sets):\n" + \
        "\n".join(found)


def test_the_literal_check_sees_a_state_in_every_usual_place():
    """The exemptions above leave every way a state is spelled as a value flagged."""
    code = '''
X = ("eligible", "under_review")
def f(app, conn):
    if app.state == "reviewed" or app.state in ("in_notice",):
        return {"state": "objection_raised"}
    conn.execute(q.where(Application.state.in_(["draft", "declared"])))
    stage = "ranked"
    return g(state="funded"), counts.get("terminated", 0)
'''
    found = sorted(v for _, v in _literals(code))
    assert found == sorted(["eligible", "under_review", "reviewed", "in_notice",
                            "objection_raised", "draft", "declared", "ranked", "funded",
                            "terminated"])


def test_the_literal_check_leaves_other_vocabularies_alone():
    code = '''
import enum
class StarStatus(enum.StrEnum):
    REVOKED = "revoked"
row = {"proposed": 1}
x = row["proposed"], config["calendar"]["assessment_due"]
table("t", ["call", "stars", "awarded", "valid until"], [])
for k in ("declaration_opens", "review_due", "assessment_due"):
    pass
'''
    assert list(_literals(code)) == []
