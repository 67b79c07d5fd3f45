"""Grades of performance assessment (绩效考核): a score's grade by the call's thresholds
(`assessment.grades`, below all of them the fail grade), and the outcome a grade proposes.

The one grading path: `starfund assessment grades` (`lifecycle.acts.assessing`)
grades every score through `grade_of`; the outcome stage (`states.outcome`) then
acts on the recorded grade.
"""
from __future__ import annotations

from lifecycle.core.callconfig import CallConfig


def grade_of(call: CallConfig, score: float) -> str:
    """The grade of a score by the call's thresholds (highest bound first; below all: fail)."""
    for name, bound in sorted(call.assessment.grades.items(), key=lambda kv: -kv[1]):
        if score >= bound:
            return name
    return call.assessment.fail_grade


def proposal_of(call: CallConfig, grade: str | None) -> str:
    """The outcome a grade proposes: continue, adjust (with the cut) or terminate."""
    if grade in call.assessment.continue_grades:
        return "continue"
    if grade in call.assessment.adjust_grades:
        return f"adjust -{call.assessment.adjust_grades[grade]:g}%"
    return "terminate"
