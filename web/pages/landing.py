"""Where an account lands after signing in: its own work first."""
from __future__ import annotations

from states.roles import EXPERT, SOCIETY


def home_of(actor) -> str:
    """Where an account lands: its own work first."""
    if actor.holds((SOCIETY,)) and not actor.holds(("officer", "coordinator", "approver",
                                                    "finance", "auditor")):
        return "/society"
    if actor.holds((EXPERT,)) and actor.roles == {EXPERT}:
        return "/expert"
    return "/staff"
