"""Message contexts: one builder per kind, so every sender gives a kind the shape `templates check` checks."""
from __future__ import annotations

from typing import Any

from apscheduler.util import ref_to_obj
from sqlalchemy import select
from worlds import CALL, assignments, db_rows, experts, in_review

from lifecycle.acts import messages
from lifecycle.core.models import Notification
from lifecycle.scheduling import runner


def shape(value: Any) -> Any:
    """The keys of a context, all the way down (values left out)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return None


def test_an_expert_added_during_review_gets_the_review_assigned_context_of_the_others(cli, tmp_path):
    """The late review_assigned mail (reassign during review) used to be built by hand, without
    state_label, due, granted_amount, score, decision_reason and checkpoint: a template using
    one passed `templates check` and then failed for that expert alone."""
    got = in_review(cli, tmp_path, experts(8))
    gone = got["A0001"][0]
    cli("review", "recuse", "A0001", "--expert", gone, "--reason", "co-author", now="2025-04-09")
    new = next(e for e in (f"E00{i}" for i in range(1, 9))
               if e not in got["A0001"] and sum(e in v for v in got.values()) < 2)
    cli("review", "reassign", "A0001", "--from", gone, "--to", new, now="2025-04-10")
    assert new in assignments(cli)["A0001"]
    rows = db_rows(cli.db, select(Notification.dedupe_key, Notification.recipient_id,
                                  Notification.context)
                   .where(Notification.call_id == CALL, Notification.kind == "review_assigned",
                          Notification.application_id == "A0001"))
    late = [r for r in rows if ":late:" in r.dedupe_key]
    on_entry = [r for r in rows if ":late:" not in r.dedupe_key]
    assert [r.recipient_id for r in late] == [new] and len(on_entry) == 3
    sample = messages.samples()["review_assigned"]
    assert shape(late[0].context) == shape(on_entry[0].context) == shape(sample)
    assert late[0].context["state"] == on_entry[0].context["state"]
    assert late[0].context["due"] == on_entry[0].context["due"]
    assert late[0].context["expert"]["id"] == new


def test_the_scheduler_wake_job_is_referenced_by_a_name_that_resolves():
    """APScheduler stores the deadline jobs by reference: the name must lead to the function."""
    assert ref_to_obj(runner.WAKE_JOB) is runner.wake
