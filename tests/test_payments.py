"""Payment plans: instalments with dates and conditions, or one payment after completion."""
from __future__ import annotations

from datetime import datetime

from worlds import (
    FINANCE,
    app_state,
    assess_checkpoint,
    audit_events,
    call_file,
    funded_project_call,
    json_of,
    people,
)

from lifecycle.rules.payments import split

AFTER = {"payments": {"mode": "after_completion"}}


def test_split_adds_up_and_gives_the_rounding_to_the_last():
    assert split(33333, [50, 30, 20]) == [16666, 10000, 6667]
    assert sum(split(12345, [33.3, 33.3, 33.4])) == 12345


def test_single_payment_after_completion(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                     call_file(tmp_path, AFTER, checkpoints=True))
    a = f"{call_id}-S001"
    assert json_of(cli("status", call_id, "--json"))["money"]["planned"] == 40000
    r = cli("payments", "pay", call_id, now="2025-06-01", ok=False, actor=FINANCE)
    assert r.exit_code == 1 and "no instalment of 2025-project is due for payment" in r.output
    for checkpoint_day in ("2025-09-20", "2025-12-16"):
        assess_checkpoint(cli, tmp_path, call_id, {a: 91, f"{call_id}-S002": 75},
                          opened=checkpoint_day, graded=checkpoint_day, decided=checkpoint_day)
    assert json_of(cli("status", call_id, "--json"))["money"]["due"] == 0
    cli("advance", call_id, "complete", now="2025-12-20")
    d = app_state(cli, a)
    assert [(p["release"], p["amount"], p["status"]) for p in d["payments"]] == [
        ("completion", 20000, "due")]
    adj = app_state(cli, f"{call_id}-S002")  # two 合格 grades: cut twice by 20%
    assert adj["payments"][0]["amount"] == 12800
    assert adj["application"]["granted_amount"] == 12800
    cli("payments", "pay", call_id, "--only", a, now="2025-12-21", actor=FINANCE)
    m = json_of(cli("payments", "list", call_id, "--json"))
    assert m == {"planned": 0, "due": 12800, "paid": 20000, "withheld": 7200, "recovered": 0,
                 "to_recover": 0}
    out = cli("status", call_id).output
    assert "paid 20,000  due 12,800  planned 0  withheld 7,200  to recover 0" in out
    assert [e["payload"]["amount"] for e in audit_events(cli, trigger="payment_paid")] == [20000]


def test_an_instalment_with_a_date_waits_for_it(cli, tmp_path):
    people(cli, tmp_path, n_societies=1, n_experts=4)
    dated = {"payments": {"instalments": {0: {"due": datetime(2025, 7, 1)}}}}
    call_id, _ = funded_project_call(cli, tmp_path, ["S001"],
                                     call_file(tmp_path, dated, checkpoints=True))
    r = cli("payments", "pay", call_id, now="2025-06-30", ok=False, actor=FINANCE)
    assert r.exit_code == 1
    r = cli("payments", "pay", call_id, now="2025-07-01", actor=FINANCE)
    assert "10,000 yuan" in r.output
    d = app_state(cli, f"{call_id}-S001")
    assert d["payments"][0]["paid_at"].startswith("2025-07-01")
