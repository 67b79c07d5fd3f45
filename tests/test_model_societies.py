"""Model societies (示范学会): named by a star call's rule through a move of the star workflow,
listed in the public notice, with their own message, validity and revocation."""
from __future__ import annotations

from worlds import (
    app_state,
    assess_checkpoint,
    audit_events,
    call_file,
    funded_project_call,
    json_of,
    listing,
    people,
    rated_star_call,
    states,
)

RULES = {"star": {"model": {"validity_years": 3, "rules": [
    {"min_level": 5, "in_a_row": 2},
    {"min_level": 4, "clean_years": 3}]}}}


def test_a_model_society_is_named_noticed_and_later_revoked(cli, tmp_path):
    people(cli, tmp_path, n_societies=4, n_experts=4)
    # S003's project of 2025 is terminated (a bar of no calls): no clean record
    call_id, _ = funded_project_call(cli, tmp_path, ["S003"], call_file(
        tmp_path, {"assessment": {"bar_calls_after_failure": 0}}))
    assess_checkpoint(cli, tmp_path, call_id, {f"{call_id}-S003": 40}, opened="2025-12-01",
                      graded="2025-12-16", decided="2025-12-17")
    rated_star_call(cli, tmp_path, call_file(tmp_path, example="star"),
                    {"S001": 0.95, "S002": 0.95})
    second = rated_star_call(cli, tmp_path, call_file(tmp_path, RULES, example="star", years=1),
                             {"S001": 0.95, "S002": 0.85, "S003": 0.85, "S004": 0.65},
                             finish=False)
    cli("advance", second.id, "close_review", now="2026-08-15T17:01")
    r = cli("notice", "publish", second.id, "--html", tmp_path / "notice.html", "--json",
            now="2026-08-16")
    assert json_of(r)["models"] == ["市测试1学会", "市测试2学会"]
    page = (tmp_path / "notice.html").read_text(encoding="utf-8")
    assert "拟命名示范学会" in page and "2025-star、2026-star 均获评 ★★★★★ 及以上（规则 1）" in page
    assert "市测试3学会" not in page.split("拟命名示范学会")[1]  # S003: a failed project
    cli("advance", second.id, "close_notice", now="2026-08-25")

    r = json_of(cli("advance", second.id, "name_models", "--json", now="2026-08-26"))
    assert r["moves"] == [{"from": "starred", "to": "model_society", "count": 2}]
    assert {x["reason"] for x in r["skip_reasons"]} == {
        f"★★★★: meets no model society rule of {second.id}",
        f"★★: meets no model society rule of {second.id}"}
    why = {s: app_state(cli, f"{second.id}-{s}")["application"]["decision_reason"]
           for s in ("S001", "S002")}
    assert why["S001"] == ("示范学会 model society: ★★★★★ or more in 2025-star and 2026-star "
                           "(rule 1); valid until 2029-08-26")
    assert why["S002"] == ("示范学会 model society: ★★★★ or more in 2026-star, no failed project "
                           "in 3 year(s) (rule 2); valid until 2029-08-26")
    named = [m for m in listing(cli, "--call", second.id) if m["kind"] == "model_named"]
    assert sorted((m["application"], m["to"]) for m in named) == [
        (f"{second.id}-S001", "s1@example.org"), (f"{second.id}-S002", "s2@example.org")]
    assert [e["payload"]["society"] for e in audit_events(cli, trigger="model_named")] == \
        ["S001", "S002"]
    models = {m["society"]: m for m in json_of(cli("model", "list", "--json"))}
    assert set(models) == {"S001", "S002"} and models["S001"]["valid_until"][:10] == "2029-08-26"
    assert json_of(cli("society", "show", "S001", "--json"))["model_society"]["call"] == second.id
    assert {r["society"]: r["model"] for r in json_of(cli("stars", second.id, "--json"))} == {
        "S001": True, "S002": True, "S003": False, "S004": False}

    # revocation: a reason is required; the star stays; the society is told
    r = cli("model", "revoke", "S001", "--reason", " ", ok=False, now="2026-10-01")
    assert r.exit_code == 1 and "needs a reason" in r.output
    cli("model", "revoke", "S001", "--reason", "2026 report found inflated", now="2026-10-01")
    d = app_state(cli, f"{second.id}-S001")
    assert d["application"]["state"] == "model_revoked"
    assert d["application"]["decision_reason"] == \
        "model society title revoked: 2026 report found inflated"
    assert d["notifications"][-1]["kind"] == "model_revoked"
    assert set(m["society"] for m in json_of(cli("model", "list", "--json"))) == {"S002"}
    assert json_of(cli("model", "list", second.id, "--json"))[0]["status"] == "revoked"
    assert json_of(cli("society", "show", "S001", "--json"))["current_star"]["level"] == 5
    r = cli("model", "revoke", "S001", "--reason", "again", ok=False, now="2026-10-02")
    assert r.exit_code == 1 and "holds no model society title" in r.output

    # revoking the star of a model society ends its title with it
    cli("star", "revoke", "S002", "--kind", "penalty", "--reason", "penalised",
        now="2026-11-01")
    title = json_of(cli("model", "list", second.id, "--json"))[1]
    assert (title["society"], title["status"], title["end_reason"]) == \
        ("S002", "revoked", "star revoked (penalty): penalised")
    assert states(cli, second.id) == {"model_revoked": 1, "revoked": 1, "starred": 2}
    assert cli("audit", "verify").exit_code == 0
