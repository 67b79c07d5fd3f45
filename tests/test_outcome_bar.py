"""A terminated or failed project bars its society from the next N calls, with the reason shown."""
from __future__ import annotations

from worlds import (
    app_state,
    assess_checkpoint,
    call_file,
    funded_project_call,
    json_of,
    people,
    states,
    write_csv,
)

from lifecycle import kinds


def _declare(cli, tmp_path, call_file, societies):

    call = kinds.load(call_file)
    cli("call", "create", call_file, now=call.calendar.declaration_opens.isoformat())
    cli("application", "import", call.id, write_csv(tmp_path / f"{call.id}.csv", [
        {"id": f"{call.id}-{s}", "society_id": s, "category": "policy", "title": "课题",
         "requested_amount": 30000, "summary": "摘要"} for s in societies]),
        now=call.calendar.declaration_opens.isoformat())
    cli("advance", call.id, "submit", now=call.calendar.declaration_opens.isoformat())
    cli("advance", call.id, "close_declaration",
        now=call.calendar.declaration_closes.replace(minute=1).isoformat())
    return call.id


def test_ineligibility_carries_into_the_next_calls_and_then_ends(cli, tmp_path):
    people(cli, tmp_path, n_societies=4, n_experts=4)
    bar_one = {"assessment": {"bar_calls_after_failure": 1}}
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002", "S003"],
                                     call_file(tmp_path, bar_one, checkpoints=True))
    assess_checkpoint(cli, tmp_path, call_id, {
        f"{call_id}-S001": 50, f"{call_id}-S002": 85, f"{call_id}-S003": 60})
    cli("outcome", "override", f"{call_id}-S003", "--to", "continue",
        "--reason", "force majeure", now="2025-09-21")
    cli("advance", call_id, "decide_outcome", now="2025-09-22")
    assert states(cli, call_id) == {"continued": 2, "terminated": 1}

    nxt = _declare(cli, tmp_path, call_file(tmp_path, checkpoints=True, years=1),
                   ["S001", "S002", "S003", "S004"])
    assert states(cli, nxt) == {"eligible": 2, "ineligible": 2}
    d = app_state(cli, f"{nxt}-S001")
    why = [h for h in d["history"] if h["action"] == "close_declaration"][0]["payload"]["because"]
    assert why == [f"society barred: project {call_id}-S001 of call {call_id} was terminated "
                   "(bars the next 1 call(s))"]
    d = app_state(cli, f"{nxt}-S003")  # failed, kept going by an override: still barred
    assert d["application"]["state"] == "ineligible"
    assert "failed its Mid-term check assessment (fail" in \
        [h for h in d["history"] if h["action"] == "close_declaration"][0]["payload"]["because"][0]
    prof = json_of(cli("society", "show", "S001", "--json"))
    assert prof["barred_from_next_project_call"] is None  # one call only: served in 2026
    assert [a["id"] for a in prof["applications"]] == [f"{call_id}-S001", f"{nxt}-S001"]

    later = _declare(cli, tmp_path, call_file(tmp_path, checkpoints=True, years=2),
                     ["S001", "S003"])
    assert states(cli, later) == {"eligible": 2}


def test_the_default_bar_lasts_two_calls_and_society_show_says_so(cli, tmp_path):
    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                     call_file(tmp_path, checkpoints=True))
    assess_checkpoint(cli, tmp_path, call_id, {f"{call_id}-S001": 40, f"{call_id}-S002": 95},
                      decided="2025-09-22")
    out = cli("society", "show", "S001").output
    assert "barred from the next project call" in out and "was terminated" in out
    first = _declare(cli, tmp_path, call_file(tmp_path, checkpoints=True, years=1), ["S001"])
    second = _declare(cli, tmp_path, call_file(tmp_path, checkpoints=True, years=2), ["S001"])
    third = _declare(cli, tmp_path, call_file(tmp_path, checkpoints=True, years=3), ["S001"])
    assert [states(cli, c) for c in (first, second, third)] == [
        {"ineligible": 1}, {"ineligible": 1}, {"eligible": 1}]
    d = app_state(cli, f"{second}-S001")
    assert any("society barred: project 2025-project-S001" in why
               for h in d["history"] for why in h["payload"].get("because", []))
