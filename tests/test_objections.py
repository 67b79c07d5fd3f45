"""Public notice with objections, end to end: named objections during the notice only,
no award while one is open, upheld (rejected or back to review) and dismissed."""
from __future__ import annotations

from worlds import (
    CALL,
    advance,
    applications,
    call_file,
    eligible_call,
    experts,
    file_objection,
    fingerprint,
    json_of,
    proposed,
    state_of,
)


def test_a_call_with_objections_upheld_and_dismissed(cli, tmp_path):
    r = proposed(cli, tmp_path)
    assert "6 project(s), 120,000 yuan; notice opened for 6, runs until 2025-05-16" in r.output
    evidence = tmp_path / "letter.txt"
    evidence.write_text("copy of the 2023 budget", encoding="utf-8")
    r = file_objection(cli, "A0001", "2025-05-12", "李华", "lihua@example.org",
                       "the same meeting was funded in 2024", "--evidence", evidence)
    assert "objection 1 filed against A0001 (objection_raised)" in r.output
    file_objection(cli, "A0002", "2025-05-13")
    file_objection(cli, "A0002", "2025-05-14", "赵强", "zq@example.org", "team overstated")
    assert state_of(cli, "A0001") == state_of(cli, "A0002") == "objection_raised"

    # the notice ends: the others are awarded, the two with open objections are not
    r = json_of(cli("advance", CALL, "close_notice", "--json", now="2025-05-17"))
    assert r["moves"] == [{"from": "in_notice", "to": "awarded", "count": 4}]
    assert r["skip_reasons"] == [{"reason": "open objection", "count": 2}]

    # too late for a new objection: refused, nothing written
    before = fingerprint(cli.db)
    late = file_objection(cli, "A0003", "2025-05-17T00:00", ok=False)
    assert late.exit_code == 1 and "A0003 is awarded" in late.output
    assert fingerprint(cli.db) == before

    r = cli("objection", "resolve", "1", "--dismiss", "--reason", "a new edition, new content",
            now="2025-05-18")
    assert "objection 1 dismissed; A0001 now awarded" in r.output
    r = cli("objection", "resolve", "2", "--uphold", "--reason", "duplicate funding confirmed",
            now="2025-05-18")
    assert "objection 2 upheld; A0002 now rejected" in r.output
    again = cli("objection", "resolve", "3", "--dismiss", "--reason", "x", ok=False)
    assert again.exit_code == 1 and "already moot" in again.output

    objections = {o["id"]: o for o in json_of(cli("objection", "list", CALL, "--json"))}
    assert [objections[i]["status"] for i in (1, 2, 3)] == ["dismissed", "upheld", "moot"]
    assert "letter.txt (23 bytes, sha256 " in objections[1]["evidence"]
    shown = json_of(cli("show", "A0002", "--json"))
    app = shown["application"]
    assert app["state"] == "rejected" and app["granted_amount"] == 0
    assert app["decision_reason"] == "objection 2 upheld: duplicate funding confirmed"
    moves = [(h["action"], h["from_state"], h["to_state"]) for h in shown["history"]
             if h["to_state"]]
    assert moves[-4:] == [("open_notice", "proposed", "in_notice"),
                          ("object", "in_notice", "objection_raised"),
                          ("object", "objection_raised", "objection_raised"),
                          ("uphold_objection", "objection_raised", "rejected")]
    acts = [h["action"] for h in json_of(cli("show", "A0001", "--json"))["history"]]
    assert acts[-4:] == ["objection_file", "object", "objection_resolve", "dismiss_objection"]
    assert json_of(cli("status", CALL, "--json"))["granted"] == 5 * 20000
    assert cli("audit", "verify").exit_code == 0


def test_named_objections_only_and_only_during_the_notice(cli, tmp_path):
    proposed(cli, tmp_path)
    before = fingerprint(cli.db)
    anon = file_objection(cli, "A0001", "2025-05-12", "匿名", ok=False)
    assert anon.exit_code == 1 and "objections must be named" in anon.output
    blank = file_objection(cli, "A0001", "2025-05-12", "王明", " ", ok=False)
    assert blank.exit_code == 1 and "--contact" in blank.output
    missing = cli("objection", "file", "A0001", "--contact", "c", "--reason", "r", ok=False)
    assert missing.exit_code == 2 and "--by" in missing.output
    nofile = file_objection(cli, "A0001", "2025-05-12", "王明", "c", "r", "--evidence",
                            tmp_path / "none.pdf", ok=False)
    assert nofile.exit_code == 1 and "no such evidence file" in nofile.output
    late = file_objection(cli, "A0001", "2025-05-17T00:00", ok=False)
    assert late.exit_code == 1 and "ended at 2025-05-17 00:00" in late.output
    assert fingerprint(cli.db) == before


def test_objection_before_the_notice_is_refused(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(2, ("academic",)))
    r = file_objection(cli, "A0001", "2025-04-10", ok=False)
    assert r.exit_code == 1 and "A0001 is eligible; objections are filed against" in r.output


def test_dismissed_during_the_notice_goes_back_to_notice_then_awarded(cli, tmp_path):
    proposed(cli, tmp_path)
    file_objection(cli, "A0001", "2025-05-12")
    r = cli("objection", "resolve", "1", "--dismiss", "--reason", "unfounded", now="2025-05-13")
    assert "A0001 now in_notice" in r.output
    r = json_of(cli("advance", CALL, "close_notice", "--json", now="2025-05-17"))
    assert r["moves"] == [{"from": "in_notice", "to": "awarded", "count": 6}]


def test_upheld_goes_back_to_review_when_the_call_says_so(cli, tmp_path):
    call = call_file(tmp_path, {"review": {"upheld_objection": "review"}})
    proposed(cli, tmp_path, call=call)
    file_objection(cli, "A0003", "2025-05-12")
    r = cli("objection", "resolve", "1", "--uphold", "--reason", "scores need a second look",
            now="2025-05-13")
    assert "A0003 now under_review" in r.output
    app = json_of(cli("show", "A0003", "--json"))["application"]
    assert app["rank"] is None and app["granted_amount"] is None and app["recommended"] is None
    assert "back to review" in app["decision_reason"]
    rows = {r["application"]: r for r in json_of(cli("rank", CALL, "--json"))["rows"]}
    assert rows["A0003"]["stage"] == "in review" and rows["A0001"]["stage"] == "ranked"
    # the others are awarded; A0003 is reviewed and ranked again for what budget is left
    cli("advance", CALL, "close_notice", now="2025-05-17")
    cli("advance", CALL, "close_review", "--only", "A0003", now="2025-05-18")
    r = json_of(cli("advance", CALL, "rank", "--json", now="2025-05-18"))
    assert r["moved"] == 1
    app = json_of(cli("show", "A0003", "--json"))["application"]
    # 900,000 academic budget - 40,000 awarded to A0001 and A0005 - its own 20,000
    assert app["recommended"] is True and "(840,000 left)" in app["decision_reason"]
    # proposed again, it gets a notice period of its own
    cli("advance", CALL, "propose", now="2025-05-19")
    r = cli("notice", "publish", CALL, "--html", tmp_path / "again.html", now="2025-05-20T09:00")
    assert "1 project(s), 20,000 yuan; notice opened for 1, runs until 2025-05-26" in r.output
    early = advance(cli, "close_notice", "2025-05-22")  # refused: exit 3
    assert early["moved"] == 0 and early["skip_reasons"][0]["reason"] == \
        "public notice still running"
    file_objection(cli, "A0003", "2025-05-26T18:00")
    cli("objection", "resolve", "2", "--dismiss", "--reason", "settled", now="2025-05-27")
    assert state_of(cli, "A0003") == "awarded"


def test_bad_objection_setting_in_the_call_file_is_refused(cli, tmp_path):
    path = call_file(tmp_path, {"review": {"upheld_objection": "maybe"}})
    r = cli("call", "create", path, ok=False)
    assert r.exit_code == 1 and "field review.upheld_objection" in r.output
    assert json_of(cli("call", "list", "--json")) == []
