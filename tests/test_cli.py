"""The command line surface: help everywhere, workflow diagrams, status and show, init, demo."""
import json
import subprocess
from pathlib import Path

import click
import system
from click.testing import CliRunner
from databases import backend

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


def test_show_prints_each_decision_with_its_reasons_whole(cli, tmp_path):
    """Issue 31: why a formal check failed was only in the history's cut-short details."""
    from worlds import CALL, EXAMPLE_CALL, applications, json_of, societies, write_csv

    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(
        2, S001={"annual_inspection_passed": "no"})), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv",
                                                 applications(2, per_society=1)), now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")
    why = ["society did not pass the annual inspection (年检)"]
    shown = json_of(cli("show", "A0001", "--json"))
    assert shown["application"]["state"] == "ineligible"
    assert [(d["action"], d["from_state"], d["to_state"], d["reasons"])
            for d in shown["decisions"]] == [("close_declaration", "declared", "ineligible", why)]
    out = cli("show", "A0001").output
    assert ("\n  2025-04-08 00:00  close_declaration: declared -> ineligible  (by admin-test)\n"
            + "".join(f"    {w}\n" for w in why)) in out, out
    assert json_of(cli("show", "A0002", "--json"))["decisions"] == []  # eligible: nothing to say


def test_init_twice_upgrades_in_place(cli):
    r = cli("init")
    assert "database upgraded" in r.output


def test_demo_runs_a_whole_year_and_its_report_and_notice_read_as_pages(tmp_path, monkeypatch):
    """The demo's year; its closing lines point to the report, which opens offline in a real
    browser (Debian's chromium) with its key figures, and its 公示 as PDF pages (pdftoppm)."""
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
    assert "report --year 2025 --html report.html" in r.output
    if backend() == "postgres":
        return  # pages, browser and PDF do not depend on the backend: checked in the SQLite run
    system.need("chromium", "pango", "poppler")
    run = CliRunner()
    as_officer = ["--db", "demo.db", "--as", "li-na"]
    r = run.invoke(main, [*as_officer, "report", "--year", "2025", "--html", "report.html",
                          "--json"], catch_exceptions=False)
    year = json.loads(r.output)["calls"]
    project = next(c for c in year if c["call"]["workflow"] == "project")
    stars = next(c for c in year if c["call"]["workflow"] == "star")
    page = _browse(Path("report.html"))
    assert page["requests"] == [], "the report fetched something: it must open offline"
    assert page["kpis"]["applications"][0] == f"{status['total']}"
    awarded = sum(b["awarded"] for b in project["budget"])
    assert page["kpis"]["awarded"][0] == f"{awarded:,}" and awarded > 0
    declared = next(s["count"] for s in project["funnel"] if s["stage"] == "declared")
    assert str(declared) in page["figures"]["fig-2025-project-funnel"]
    assert page["figures"]["fig-2025-project-scores"] and page["svg_width"] > 300
    assert "★★★★★" in page["figures"]["fig-2025-star-stars"]
    assert sum(stars["stars"]["levels"].values()) == stars["stars"]["stars"] > 0

    r = run.invoke(main, [*as_officer, "notice", "export", "2025-project", "--pdf", "notice.pdf",
                          "--json"], catch_exceptions=False)
    notice = json.loads(r.output)
    subprocess.run(["pdftoppm", "-r", "40", "-png", "notice.pdf", "page"], check=True)
    pages = sorted(Path().glob("page-*.png"))
    assert pages and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pages)
    text = subprocess.run(["pdftotext", "notice.pdf", "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "拟资助项目公示" in text and f"{notice['total']:,}" in text
    assert f"{notice['count']} 项" in text and notice["last_day"] in text
    first = notice["rows"][0]
    assert first["society"] in text and first["id"] in text


def _browse(html: Path) -> dict:
    """Open a page in Debian's chromium (Playwright, no browser download), every request
    outside the file refused and recorded; return its key figures, figures' text and size."""
    chromium = system.CHROMIUM
    from playwright.sync_api import sync_playwright

    requests = []

    def route(r):
        if r.request.url.startswith("file:"):
            return r.continue_()
        requests.append(r.request.url)
        return r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.goto(html.resolve().as_uri())
            kpis = {k: page.locator(f"b.{k}").all_inner_texts()
                    for k in ("applications", "awarded", "paid")}
            figures = {f.get_attribute("id"): f.inner_text()
                       for f in page.locator("div.figure").all()}
            width = page.locator("div.figure svg").first.bounding_box()["width"]
        finally:
            browser.close()
    return {"requests": requests, "kpis": kpis, "figures": figures, "svg_width": width}
