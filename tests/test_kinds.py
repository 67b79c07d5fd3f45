"""Kinds of call as plug-ins: the grant kind end to end, a toy kind registered from tests/,
settings a kind does not read, and calls that keep the definition they started with."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
from databases import backend
from worlds import (
    advance,
    applications,
    call_data,
    create_call,
    experts,
    fingerprint,
    json_of,
    score_assigned,
    societies,
    states,
    write_csv,
)

from lifecycle import kinds
from lifecycle.engine.machine import for_workflow
from states import declaration, names, review
from states.roles import APPROVER, OFFICER
from states.spec import Move, State
from states.workflows import Workflow, problems

GRANT = "2025-grant"


def _grant_year(cli, tmp_path, patch: dict | None = None) -> None:
    """A grant call with 10 societies, 8 experts and 10 drafts of 20,000 each."""
    create_call(cli.db, call_data(patch, example="grant"), now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(8)), now="2025-02-01")
    cli("application", "import", GRANT, write_csv(tmp_path / "apps.csv", applications(
        10, categories=("exchange", "popsci"), per_society=1)), now="2025-03-10")


def _approved(cli, tmp_path, patch: dict | None = None) -> None:
    """The grant year up to its approval, every application scored 90 of 100."""
    _grant_year(cli, tmp_path, patch)
    for trigger, at in (("submit", "2025-03-20"), ("close_declaration", "2025-03-31T17:00:01")):
        advance(cli, trigger, at, call=GRANT)
    cli("review", "assign", GRANT, "--per-application", "3", now="2025-04-01")
    advance(cli, "start_review", "2025-04-01", call=GRANT)
    score_assigned(cli.db, 0.9, call_id=GRANT)
    advance(cli, "close_review", "2025-04-21T17:00", call=GRANT)
    advance(cli, "approve", "2025-04-22", call=GRANT)


def test_every_kind_validates_and_reuses_the_notice_stage():
    for kind in kinds.all_kinds():
        assert problems(kind.workflow) == [], kind.name
    grant = kinds.of("grant").workflow
    triggers = {m.trigger for m in grant.moves}
    assert {"approve", "open_notice", "object", "close_notice", "award", "fund"} <= triggers
    assert "rank" not in triggers and "propose" not in triggers  # no ranking in a grant


def test_a_grant_call_runs_a_year_with_its_report(cli, tmp_path):
    _grant_year(cli, tmp_path, {"budget_total": 100_000})
    assert advance(cli, "submit", "2025-03-20", call=GRANT)["moved"] == 10
    assert advance(cli, "close_declaration", "2025-03-31T17:00:01", call=GRANT)["moved"] == 10
    cli("review", "assign", GRANT, "--per-application", "3", now="2025-04-01")
    assert advance(cli, "start_review", "2025-04-01", call=GRANT)["moved"] == 10
    # A0001..A0007 pass the mark of 75, the others do not
    score_assigned(cli.db, lambda app: 0.95 if int(app[1:]) <= 7 else 0.6, call_id=GRANT)
    assert advance(cli, "close_review", "2025-04-21T17:00", call=GRANT)["moved"] == 10
    r = advance(cli, "approve", "2025-04-22", call=GRANT)
    assert {(m["to"], m["count"]) for m in r["moves"]} == {("proposed", 5), ("not_proposed", 5)}
    shown = json.loads(cli("show", "A0006", "--json").output)["application"]
    assert "first declared, first served" in shown["decision_reason"]  # passed, budget used
    advance(cli, "open_notice", "2025-04-22", call=GRANT)
    r = advance(cli, "close_notice", "2025-04-30", call=GRANT)
    assert {(m["to"], m["count"]) for m in r["moves"]} == {("awarded", 5), ("rejected", 5)}
    assert advance(cli, "fund", "2025-05-06", call=GRANT)["moved"] == 5
    assert advance(cli, "open_assessment", "2025-08-01", call=GRANT)["moved"] == 5
    grades = [{"application_id": f"A{i:04d}", "score": s}
              for i, s in zip(range(1, 6), [95, 85, 75, 60, 90])]
    cli("assessment", "grades", GRANT, write_csv(tmp_path / "g.csv", grades), now="2025-08-28")
    assert advance(cli, "assess", "2025-08-29T17:00", call=GRANT)["moved"] == 5
    r = advance(cli, "decide_outcome", "2025-09-01", call=GRANT)
    assert {(m["to"], m["count"]) for m in r["moves"]} == {
        ("continued", 3), ("adjusted", 1), ("terminated", 1)}
    assert cli("audit", "verify").exit_code == 0
    report = tmp_path / "grant-report.html"
    cli("report", GRANT, "--html", report)
    html = report.read_text(encoding="utf-8")
    assert "2025年度学术交流一次性资助" in html


def test_a_grant_without_a_notice_is_awarded_at_once(cli, tmp_path):
    _approved(cli, tmp_path, {"grant": {"notice": False}})
    assert advance(cli, "award", "2025-04-22", call=GRANT)["moved"] == 10
    assert states(cli, GRANT) == {"awarded": 10}


def test_a_grant_call_with_a_notice_refuses_the_direct_award(cli, tmp_path):
    _approved(cli, tmp_path)
    r = advance(cli, "award", "2025-04-22", call=GRANT)
    assert r["moved"] == 0 and "public notice" in r["skip_reasons"][0]["reason"]


@pytest.mark.parametrize("section, value", [
    ("star", {"thresholds": {"1": 60}}), ("classes", [{"id": "理科", "budget": 3_000_000}]),
    ("support", [{"id": "x", "earned_by": "grade", "bonus": 2}]), ("lottery", {"odds": 1})])
def test_a_section_the_kind_does_not_read_is_refused_naming_it(cli, tmp_path, section, value):
    data = call_data({section: value}, example="grant")
    path = tmp_path / "bad.toml"
    import tomli_w

    path.write_bytes(tomli_w.dumps(data).encode())
    before = fingerprint(cli.db)
    r = cli("call", "create", path, ok=False)
    assert r.exit_code != 0
    assert f"field {section}: a grant call does not read [{section}]" in r.output
    assert fingerprint(cli.db) == before


# --- a fourth kind, registered from tests/ ---------------------------------------------

def _toy_condition(_app, ctx) -> str | None:
    return None if ctx.options.get("ok", True) else "not ok"


class ToyStage:
    """A toy kind's own stage: reviewed applications are simply kept or dropped."""

    STATES = (State("kept", "保留 kept", final=True), State("dropped", "未保留 dropped",
                                                              final=True))
    MOVES = (Move("keep", (names.REVIEWED,), "kept", (_toy_condition,), who=(APPROVER,)),
             Move("drop", (names.ELIGIBLE, names.UNDER_REVIEW), "dropped", who=(OFFICER,)))


def _toy_kind() -> kinds.Kind:
    workflow = Workflow("toy", "玩具 toy kind", names.DRAFT, (declaration, review, ToyStage))
    return kinds.Kind(name="toy", title=workflow.title, workflow=workflow,
                      sections=frozenset({"criteria", "assessment"}),
                      funnel=(names.DECLARED, names.ELIGIBLE, names.REVIEWED, "kept"))


def test_a_toy_kind_from_tests_runs_through_the_cli_and_the_dashboard(cli, tmp_path,
                                                                         monkeypatch):

    toy = _toy_kind()
    assert problems(toy.workflow) == []
    monkeypatch.setitem(kinds.KINDS, "toy", toy)   # registered for this test only
    for_workflow.cache_clear()
    create_call(cli.db, call_data({"workflow": "toy", "id": "2025-toy"}), now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(4)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(6)), now="2025-02-01")
    cli("application", "import", "2025-toy", write_csv(tmp_path / "apps.csv",
                                                       applications(4, per_society=1)),
        now="2025-03-10")
    advance(cli, "submit", "2025-03-20", call="2025-toy")
    advance(cli, "close_declaration", "2025-04-07T17:00:01", call="2025-toy")
    cli("review", "assign", "2025-toy", "--per-application", "3", now="2025-04-08")
    advance(cli, "start_review", "2025-04-08", call="2025-toy")
    score_assigned(cli.db, 0.9, call_id="2025-toy")
    advance(cli, "close_review", "2025-05-06T17:00", call="2025-toy")
    assert advance(cli, "keep", "2025-05-07", call="2025-toy")["moved"] == 4
    assert states(cli, "2025-toy") == {"kept": 4}
    status = json_of(cli("status", "2025-toy", "--json"))
    assert status["workflow"] == "toy"
    assert "kept" in for_workflow("toy").text()

    from click.testing import CliRunner
    from portal import PASSWORD, client, login

    from cli import main

    CliRunner().invoke(main, ["--db", cli.db, "--as", cli.actor, "--now", "2025-05-07", "user",
                              "add", "officer-toy", "--role", "officer", "--password-stdin"],
                       input=PASSWORD + "\n", catch_exceptions=False)
    with client(cli.db) as c:
        login(c, "officer-toy")
        page = c.get("/staff/call/2025-toy")
        assert page.status_code == 200
        assert 'data-stage="kept">4<' in page.text  # the toy kind's own funnel


def test_a_call_keeps_its_definition_until_migrated(cli, tmp_path, monkeypatch):
    _grant_year(cli, tmp_path)
    advance(cli, "submit", "2025-03-20", call=GRANT)
    advance(cli, "close_declaration", "2025-03-31T17:00:01", call=GRANT)
    # the code's grant workflow changes: the formal check's "eligible" becomes "admitted"
    grant = kinds.of("grant")
    admitted = State("admitted", "准入 admitted")
    stage = SimpleNamespace(STATES=(admitted,), MOVES=(
        Move("start_review", ("admitted",), names.UNDER_REVIEW, who=(OFFICER,)),
        Move("admit", (names.DECLARED,), "admitted", who=(OFFICER,))))
    changed = Workflow("grant", grant.workflow.title, names.DRAFT,
                       (stage, *[s for s in grant.workflow.stages]))
    monkeypatch.setitem(kinds.KINDS, "grant", replace(grant, workflow=changed))
    for_workflow.cache_clear()
    try:
        r = cli("advance", GRANT, "start_review", now="2025-04-01", ok=False)
        assert r.exit_code != 0
        assert "nothing was moved" in r.output and "+ state admitted" in r.output
        assert "starfund call migrate 2025-grant" in r.output
        before = fingerprint(cli.db)
        bad = cli("call", "migrate", GRANT, "--map", "eligible=nowhere", ok=False)
        assert bad.exit_code != 0 and "nowhere is not a state of workflow grant" in bad.output
        dry = cli("call", "migrate", GRANT, "--dry-run")
        assert "dry run" in dry.output and fingerprint(cli.db) == before
        done = json_of(cli("call", "migrate", GRANT, "--json"))
        assert done["to"] == changed.digest and "state admitted" in " ".join(done["added"])
        again = cli("advance", GRANT, "start_review", "--dry-run", now="2025-04-01", ok=False)
        assert "runs on version" not in again.output  # migrated: the call moves again
        trail = json_of(cli("audit", "query", "--trigger", "call_migrate", "--json"))
        assert len(trail["events"] if isinstance(trail, dict) else trail) == 1
    finally:
        for_workflow.cache_clear()


def test_the_grant_demo_runs_its_year(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cli import main

    if backend() != "sqlite":
        pytest.skip("the demo runs on its own SQLite file; the SQLite run covers it")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["demo", "--kind", "grant", "--db", "g.db", "--societies",
                                  "20", "--outbox", "mail"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "intact" in r.output and "status 2025-grant" in r.output
    status = json.loads(CliRunner().invoke(main, ["--db", "g.db", "--as", "li-na", "status",
                                                  "2025-grant", "--json"]).output)
    counts = {s["state"]: s["count"] for s in status["states"]}
    assert counts.get("completed", 0) > 0 and sum(counts.values()) == 10


def test_init_gives_calls_made_before_versioning_the_definition_they_run_on(cli, tmp_path):
    from sqlalchemy import select, update

    from lifecycle.core.db import make_engine
    from lifecycle.core.models import Call

    _grant_year(cli, tmp_path)
    e = make_engine(cli.db)
    with e.begin() as conn:  # as a database of the release before definitions were versioned
        config = conn.execute(select(Call.config).where(Call.id == GRANT)).scalar()
        config = {k: v for k, v in config.items()
                  if k not in ("definition", "definition_outline")}
        conn.execute(update(Call).where(Call.id == GRANT).values(config=config))
    cli("init", "--simulation")
    with e.connect() as conn:
        config = conn.execute(select(Call.config).where(Call.id == GRANT)).scalar()
    e.dispose()
    assert config["definition"] == kinds.of("grant").workflow.digest
    assert advance(cli, "submit", "2025-03-20", call=GRANT)["moved"] == 10


def test_the_portal_offers_each_kind_its_own_sections(cli, tmp_path):
    """A society sees "declare online" for a grant call and the self-evaluation sheet for a
    star call: what the kind lists in `portal`, never a comparison of workflow names."""
    from click.testing import CliRunner
    from portal import PASSWORD, agreed, client, login

    from cli import main

    _grant_year(cli, tmp_path)
    create_call(cli.db, call_data(example="star"), now="2025-02-01")
    CliRunner().invoke(main, ["--db", cli.db, "--as", cli.actor, "--now", "2025-03-05", "user",
                              "add", "s1", "--role", "society", "--society", "S001",
                              "--password-stdin"], input=PASSWORD + "\n", catch_exceptions=False)
    agreed(cli.db, "s1")  # the processing rules agreed, as on its first visit
    from lifecycle.core import clock

    with clock.frozen("2025-03-05T10:00"), client(cli.db) as c:
        login(c, "s1")
        home = c.get("/society").text
        assert f'href="/society/declare/{GRANT}"' in home
        assert c.get(f"/society/star/{GRANT}").status_code == 404
    with clock.frozen("2025-06-05T10:00"), client(cli.db) as c:
        login(c, "s1")
        home = c.get("/society").text
        assert 'href="/society/star/2025-star"' in home
        assert 'href="/society/declare/2025-star"' not in home
