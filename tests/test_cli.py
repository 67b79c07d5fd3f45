"""The command line surface: help everywhere, workflow diagrams, status and show, init, demo."""
import json
from pathlib import Path

import click
from click.testing import CliRunner

from cli import main


def all_commands(group: click.Group, prefix=()):
    """Every command, loaded as invoking it would (the root group registers its commands lazily)."""
    ctx = click.Context(group, info_name=prefix[-1] if prefix else "starfund")
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        path = prefix + (name,)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, path)
        else:
            yield path, cmd


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    missing = []
    for path, _cmd in all_commands(main):
        r = runner.invoke(main, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        if "Example" not in r.output:
            missing.append(" ".join(path))
    assert not missing, f"commands without an example in --help: {missing}"


def test_every_command_takes_db_as_and_now():
    for path, cmd in all_commands(main):
        names = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert {"--db", "--as", "--now"} <= names, path


def test_workflow_show_text_and_mermaid():
    runner = CliRunner()
    text = runner.invoke(main, ["workflow", "show", "project"]).output
    assert "close_declaration" in text and "declared -> eligible if declaration_window_closed" in text
    mermaid = runner.invoke(main, ["workflow", "show", "--format", "mermaid"]).output
    assert "stateDiagram-v2" in mermaid
    assert "in_notice --> awarded: close_notice [notice_period_over & no_open_objection]" in mermaid
    bad = runner.invoke(main, ["workflow", "show", "lottery"])
    assert bad.exit_code != 0 and "unknown workflow 'lottery'" in bad.output


def test_status_and_show_print_tables(small_call):
    out = small_call("status", "2025-project", now="2025-03-20").output
    assert "draft" in out and "20" in out and "possible triggers now: close_declaration, submit, withdraw" in out
    assert "declaration_closes" in out  # the deadline the draft state scheduled
    out = small_call("show", "A0001").output
    assert "A0001" in out and "[draft]" in out and "create" in out


def test_init_twice_upgrades_in_place(cli):
    r = cli("init")
    assert "database upgraded" in r.output


def test_demo_runs_a_whole_year(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["demo", "--db", "demo.db", "--outbox", "mail"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "audit chain:" in r.output and "intact" in r.output
    assert "starfund --db demo.db --as li-na status 2025-project" in r.output
    status = json.loads(CliRunner().invoke(main, ["--db", "demo.db", "--as", "li-na", "status",
                                                  "2025-project", "--json"]).output)
    counts = {s["state"]: s["count"] for s in status["states"]}
    assert status["total"] == 150
    assert counts.get("completed", 0) > 0 and counts.get("rejected", 0) > 0
    assert len(list(Path("mail").glob("*.eml"))) > 150
