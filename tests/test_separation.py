"""Separation of duties (states.roles.DUTIES) through the command line: who scored cannot
rank, who proposed cannot pay, no one is approver and auditor; each refusal names its rule
and leaves the database as it was, and a call's [separation] table can lift the first two."""
from __future__ import annotations

from worlds import (
    ADMIN,
    AUDITOR,
    CALL,
    FINANCE,
    Cli,
    assignments,
    audit_rows,
    call_file,
    funded_project_call,
    json_of,
    people,
    refused,
    reviewed,
    states,
)

from states import roles as R

JUDGE = "judge-e1"
"""An approver who is also expert E001 (and scores in the review)."""


def reviewed_with_judge(cli: Cli, tmp_path, patch: dict | None = None) -> Cli:
    """Two applications reviewed (E001 among the scorers), and JUDGE: approver + expert E001."""
    reviewed(cli, tmp_path, lambda a, k: 90, n_apps=2, call=call_file(tmp_path, patch))
    scored_by_e1 = [a for a, xs in assignments(cli).items() if "E001" in xs]
    assert scored_by_e1, "the world must have E001 score something"
    cli("user", "add", JUDGE, "--role", "approver", "--role", "expert", "--expert", "E001",
        now="2025-05-07")
    return Cli(cli.db, actor=JUDGE)


def test_an_approver_who_scored_cannot_rank(cli, tmp_path):
    judge = reviewed_with_judge(cli, tmp_path)
    out = refused(judge, "advance", CALL, "rank", now="2025-05-08")
    assert R.SCORER_NOT_APPROVER in out and "as expert E001" in out, out
    assert JUDGE in out
    # the rule is about what the expert scored: an approver who scored nothing ranks
    cli("advance", CALL, "rank", now="2025-05-08")
    assert states(cli) == {"ranked": 2}
    assert {r.actor for r in audit_rows(cli.db, action="rank")} == {ADMIN}


def test_a_call_can_lift_scorer_not_approver(cli, tmp_path):
    judge = reviewed_with_judge(cli, tmp_path, {"separation": {R.SCORER_NOT_APPROVER: False}})
    judge("advance", CALL, "rank", now="2025-05-08")
    assert states(cli) == {"ranked": 2}
    assert {r.actor for r in audit_rows(cli.db, action="rank")} == {JUDGE}


def funded_by_a_paying_approver(cli: Cli, tmp_path, patch: dict | None = None) -> str:
    """ADMIN is also given the finance role, then ranks and proposes a call to funding
    (one payment of the whole grant, due on award)."""
    cli("user", "roles", ADMIN, "--grant", "finance", now="2025-01-05")
    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"], call_file(tmp_path, patch))
    assert {r.actor for r in audit_rows(cli.db, action="propose")} == {ADMIN}
    return call_id


def test_whoever_proposed_cannot_pay(cli, tmp_path):
    call_id = funded_by_a_paying_approver(cli, tmp_path)
    out = refused(cli, "payments", "pay", call_id, now="2025-06-01")
    assert R.PROPOSER_NOT_PAYER in out and ADMIN in out, out
    assert "fired rank" in out or "fired propose" in out, out
    r = cli("payments", "pay", call_id, now="2025-06-01", actor=FINANCE)
    assert "paid 2 instalments to 2 applications" in r.output
    assert {r.actor for r in audit_rows(cli.db, action="payment_paid")} == {FINANCE}
    assert json_of(cli("payments", "list", call_id, "--json"))["paid"] == 40000


def test_a_call_can_lift_proposer_not_payer(cli, tmp_path):
    call_id = funded_by_a_paying_approver(cli, tmp_path,
                                          {"separation": {R.PROPOSER_NOT_PAYER: False}})
    cli("payments", "pay", call_id, now="2025-06-01")
    assert {r.actor for r in audit_rows(cli.db, action="payment_paid")} == {ADMIN}


def test_no_one_is_approver_and_auditor(cli):
    out = refused(cli, "user", "add", "both", "--role", "approver", "--role", "auditor")
    assert R.APPROVER_NOT_AUDITOR in out and "approver and auditor" in out, out
    out = refused(cli, "user", "roles", AUDITOR, "--grant", "approver")
    assert R.APPROVER_NOT_AUDITOR in out, out
    names = [a["name"] for a in json_of(cli("user", "list", "--json"))]
    assert "both" not in names
