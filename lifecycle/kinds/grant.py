"""一次性项目资助: a one-off grant (学术交流资助, commissioned 软课题, 科普 projects).

Declaration and formal check, expert review, approval on the pass mark within the budget in
the order declared (no ranking, no cut lists: `states.approval`), an optional 公示 with
objections (the call's `[grant] notice`, default on), award with instalments, mid-term and
final assessment, and the outcome.

History policy: a failed or terminated grant bars the society from later calls as a failed
project does (public money misspent is misspent whatever the call); a grant's top grade earns
no steady support (a one-off grant has nothing to continue), and grants do not count when a
star call names model societies (the plan names key-activity projects for that).
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lifecycle.core.callconfig import CallConfig, Say, Strict
from lifecycle.kinds import checks
from lifecycle.kinds.base import Kind
from notifications.reasons import Reason
from states import approval, assessment, award, declaration, outcome, review
from states import names as S
from states.roles import APPROVER
from states.spec import Context, Move
from states.workflows import Workflow


class GrantSettings(Strict):
    """The call file's `[grant]` section."""

    notice: bool = True
    """Hold a public notice (公示) with objections before the award; false: award at once."""


def settings(call: CallConfig) -> GrantSettings:
    """The call's `[grant]` section (validated when the call was created)."""
    return GrantSettings.model_validate(call.section("grant") or {})


def grant_section_sound(call: CallConfig, say: Say) -> None:
    try:
        settings(call)
    except ValidationError as e:
        for x in e.errors():
            say(("grant", *x["loc"]), x["msg"], x.get("input"))


def load_settings(_conn: Any, ctx: Context, _apps: Any) -> None:
    """The call's `[grant]` section, read once for the batch (not once per application)."""
    ctx.data["grant"] = settings(ctx.call)


def no_notice_in_call(_app: Any, ctx: Context) -> str | None:
    return None if not ctx.data["grant"].notice else Reason("notice_not_held")


class WithoutNotice:
    """The grant's own moves: straight to the award when the call holds no notice."""

    TRIGGERS = {"award": "立项 award"}
    STATES = ()
    MOVES = (
        Move("award", (S.PROPOSED,), S.AWARDED, (no_notice_in_call,), who=(APPROVER,),
             prepare=(load_settings,),
             help="award the approved grants at once (calls without a public notice)"),
        Move("award", (S.NOT_PROPOSED,), S.REJECTED, (no_notice_in_call,), who=(APPROVER,),
             prepare=(load_settings,)),
    )


WORKFLOW = Workflow(
    name="grant",
    title="一次性项目资助 one-off grant",
    initial=S.DRAFT,
    stages=(declaration, review, approval, award, WithoutNotice, assessment, outcome),
)

KIND = Kind(
    name="grant",
    title=WORKFLOW.title,
    workflow=WORKFLOW,
    sections=frozenset({"criteria", "assessment", "payments", "grant"}),
    rules=(checks.budget_can_fund_caps, checks.criteria_to_score,
           checks.assessment_after_review, grant_section_sound),
    bars=True,
    funnel=(S.DECLARED, S.ELIGIBLE, S.REVIEWED, S.PROPOSED, S.AWARDED, S.FUNDED, S.ASSESSED,
            S.COMPLETED),
    portal=("declare_online",),
    example="examples/grant-call.toml",
)
