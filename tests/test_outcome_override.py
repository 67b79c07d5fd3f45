"""Overrides: one application, a required reason, an audited transition through the engine."""
from __future__ import annotations

import pytest
from databases import World
from worlds import (
    FINANCE,
    FOUNDED,
    Cli,
    app_state,
    assess_checkpoint,
    audit_events,
    call_file,
    funded_project_call,
    json_of,
    people,
)

from lifecycle.core.db import make_engine
from lifecycle.engine import engine

CALL_ID = "2025-project"
IDS = [f"{CALL_ID}-S00{i}" for i in (1, 2, 3, 4)]


def _assessed(db: str, tmp_path) -> None:
    cli = Cli(db)
    people(cli, tmp_path, n_societies=4, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S003", "S004"],
                                     call_file(tmp_path, checkpoints=True))
    assert call_id == CALL_ID
    cli("payments", "pay", call_id, now="2025-05-25", actor=FINANCE)
    assess_checkpoint(cli, tmp_path, call_id, dict(zip(IDS, (95, 72, 60, 60))))


ASSESSED = World("assessed", _assessed, base=FOUNDED)


@pytest.fixture
def cli(new_db) -> Cli:
    """Four projects graded 95, 72, 60, 60 at the mid-term check and assessed (a World)."""
    return Cli(new_db("starfund", world=ASSESSED))


@pytest.fixture
def assessed() -> tuple[str, list[str]]:
    """The call and the four projects of `cli`."""
    return CALL_ID, IDS


def test_an_override_without_a_reason_is_refused(cli, assessed):
    call_id, ids = assessed
    r = cli("outcome", "override", ids[2], "--to", "continue", ok=False)
    assert r.exit_code == 2 and "Missing option '--reason'" in r.output
    r = cli("outcome", "override", ids[2], "--to", "continue", "--reason", "   ", ok=False)
    assert r.exit_code == 1 and "an override needs a reason" in r.output
    # the engine itself refuses too: the reason is a condition of the move
    e = make_engine(cli.db)
    rep = engine.advance_in_tx(e, call_id, "override_outcome", "admin-test", only=[ids[2]],
                               options={"outcome": "continue"})
    e.dispose()
    assert rep.moved_total == 0
    assert rep.skipped_ids == {ids[2]: "an override needs a reason (--reason)"}
    assert app_state(cli, ids[2])["application"]["state"] == "assessed"
    assert audit_events(cli, trigger="override_outcome") == []


def test_override_to_adjust_with_its_own_cut_and_to_terminate(cli, assessed):
    call_id, ids = assessed
    cli("outcome", "override", ids[0], "--to", "adjust", "--cut", "50",
        "--reason", "outputs below the plan despite the grade", now="2025-09-25")
    d = app_state(cli, ids[0])
    assert d["application"]["state"] == "adjusted"
    assert d["application"]["granted_amount"] == 15000  # unpaid 10,000 cut 50%
    assert "adjusted by override (outputs below the plan despite the grade)" in \
        d["application"]["decision_reason"]
    cli("outcome", "override", ids[1], "--to", "terminate",
        "--reason", "falsified attendance lists", now="2025-09-25")
    d = app_state(cli, ids[1])
    assert d["application"]["state"] == "terminated"
    assert d["application"]["amount_to_recover"] == 10000
    events = audit_events(cli, trigger="override_outcome")
    assert [(e["application_id"], e["from_state"], e["to_state"],
             e["payload"]["options"]["reason"]) for e in events] == [
        (ids[0], "assessed", "adjusted", "outputs below the plan despite the grade"),
        (ids[1], "assessed", "terminated", "falsified attendance lists")]
    assert events[0]["actor"] == "admin-test"
    # the batch confirms the rest as their grades propose
    r = json_of(cli("advance", call_id, "decide_outcome", "--json", now="2025-09-26"))
    assert r["moves"] == [{"from": "assessed", "to": "terminated", "count": 2}]


def test_override_is_one_application_and_only_when_assessed(cli, assessed):
    call_id, ids = assessed
    cli("advance", call_id, "decide_outcome", "--only", ids[0], now="2025-09-25")
    r = cli("outcome", "override", ids[0], "--to", "terminate", "--reason", "late finding",
            ok=False)
    assert r.exit_code == 1 and "no application of" in r.output and "override_outcome" in r.output
    r = cli("outcome", "override", "nope", "--to", "continue", "--reason", "x", ok=False)
    assert r.exit_code == 1 and "no application 'nope'" in r.output
    r = cli("outcome", "override", ids[1], "--to", "continue", "--cut", "10", "--reason", "x",
            ok=False)
    assert r.exit_code == 1 and "--cut only goes with --to adjust" in r.output
