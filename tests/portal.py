"""The portal's world and its doors for tests: a call whose declarations need a 申报书, the
people, one account per role with a password, a live uvicorn server in a thread, and a
Starlette TestClient for the fast checks.

The server runs in the test's own process, so `clock.set_now` in a test moves the portal's
time too (tests move time explicitly; nothing sleeps waiting for it).
"""
from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner
from databases import World
from worlds import ADMIN, FOUNDED, Cli, call_file, experts, societies, write_csv

from lifecycle.core import clock
from lifecycle.core.db import make_engine

CALL = "2025-project"
PASSWORD = "correct horse battery"
OPEN = "2025-03-20T10:00"
"""A time inside the call's declaration window."""

ACCOUNTS = {  # name -> (roles, society, expert)
    "officer-li": (("officer",), None, None),
    "coord-zhou": (("coordinator",), None, None),
    "approver-wang": (("approver",), None, None),
    "finance-chen": (("finance",), None, None),
    "auditor-sun": (("auditor",), None, None),
    "s005": (("society",), "S005", None),
    "s006": (("society",), "S006", None),
    "e001": (("expert",), None, "E001"),
    "e002": (("expert",), None, "E002"),
}
ATTACHMENTS = {"eligibility": {"attachments": [
    {"id": "application_form", "name": "申报书", "name_en": "Application form", "required": True,
     "types": ["pdf", "docx"]},
    {"id": "budget", "name": "经费预算表", "name_en": "Budget sheet", "types": ["xlsx", "pdf"]}]},
    "review": {"min_reviews": 2, "per_application": 2}}


def pdf_bytes(text: str = "shenbaoshu") -> bytes:
    """A small valid PDF (its first bytes are what the upload check reads)."""
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]"
            b"/Count 0>>endobj\n% " + text.encode() + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def build(db: str, tmp_path: Path) -> None:
    cli = Cli(db)
    cli("call", "create", call_file(tmp_path, ATTACHMENTS), now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(2)), now="2025-02-01")
    for name, (roles, society, expert) in ACCOUNTS.items():
        add_account(db, name, roles, society, expert)
    agreed(db, *(n for n, (roles, _, _) in ACCOUNTS.items() if {"society", "expert"} & set(roles)))
    clock.set_now(None)


def add_account(db: str, name: str, roles: tuple[str, ...], society: str | None = None,
                expert: str | None = None) -> None:
    """An account with the tests' password, added by an approver (`user add`)."""
    from cli import main

    args = ["--db", db, "--as", ADMIN, "--now", "2025-02-01", "user", "add", name,
            "--password-stdin"]
    for r in roles:
        args += ["--role", r]
    if society:
        args += ["--society", society]
    if expert:
        args += ["--expert", expert]
    result = CliRunner().invoke(main, args, input=PASSWORD + "\n", catch_exceptions=False)
    assert result.exit_code == 0, result.output


def agreed(db: str, *names: str) -> None:
    """The accounts agree to the processing rules in force (the act the rules page calls), so
    tests about other pages meet those pages, not the rules first."""
    from lifecycle.acts import consents
    from web import processing_rules

    e = make_engine(db)
    try:
        with clock.frozen("2025-02-01"), e.begin() as conn:
            for name in names:
                consents.agree(conn, name, processing_rules.VERSION)
    finally:
        e.dispose()


PORTAL = World("portal", build, base=FOUNDED)


@contextmanager
def served(db: str) -> Iterator[str]:
    """The portal on uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    from web.app import create_app

    engine = make_engine(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # the server says when it listens (no timed wait)
            thread.join(0.01)
            if not thread.is_alive():
                raise RuntimeError("the portal did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        engine.dispose()


def client(db: str):
    """A Starlette TestClient on the portal (in-process ASGI; no server)."""
    from starlette.testclient import TestClient

    from web.app import create_app

    return TestClient(create_app(make_engine(db)), base_url="http://testserver",
                      follow_redirects=False)


def login(c, name: str, password: str = PASSWORD):
    """Log a TestClient in (the login form's CSRF token from its pre-login cookie)."""
    page = c.get("/login")
    token = _csrf(page.text)
    return c.post("/login", data={"name": name, "password": password, "csrf": token})


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]*)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def flash_after(c, response) -> str:
    """The message a POST left for the page it redirected to (asserting it redirected)."""
    assert response.status_code == 303, response.text[:500]
    page = c.get(response.headers["location"]).text
    m = re.search(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', page, re.S)
    return m.group(1) if m else ""


def csrf_of(c, path: str) -> str:
    """The CSRF token a page's forms carry."""
    return _csrf(c.get(path).text)


def declared(db: str, society_account: str, title: str, category: str = "academic",
             amount: int = 50000) -> str:
    """A draft declared, given its 申报书 and submitted through the engine API (not the
    browser) as the society's account, at OPEN; returns its id."""
    from lifecycle.acts import drafts
    from lifecycle.engine import engine as engine_api

    e = make_engine(db)
    try:
        with clock.frozen(OPEN), e.begin() as conn:
            app_id = drafts.declare(conn, CALL, {"category": category, "title": title,
                                                 "requested_amount": amount,
                                                 "summary": "摘要"}, society_account)
            drafts.attach(conn, app_id, "application_form", "申报书.pdf", pdf_bytes(title),
                          society_account)
            engine_api.advance(conn, CALL, "submit", society_account, only=[app_id])
    finally:
        e.dispose()
    return app_id


def _in_review(db: str, tmp_path: Path) -> None:
    declared(db, "s005", "学会学术年会")
    declared(db, "s006", "科普进社区")
    cli = Cli(db)
    cli("advance", CALL, "close_declaration", now="2025-04-08")
    cli("review", "assign", CALL, now="2025-04-09")
    cli("advance", CALL, "start_review", now="2025-04-09")


IN_REVIEW = World("portal-in-review", _in_review, base=PORTAL)
"""S005's and S006's declarations (2025-project-00001 and -00002) under review by E001, E002."""
REVIEWING = "2025-04-20T10:00"


NEW_RULES = "2027-01-01"


def new_rules(monkeypatch, folder: Path, version: str = NEW_RULES) -> str:
    """A new version of the processing rules comes into force (its two documents written to
    `folder`, a changed line in each), as a deployment changes them: the same process's
    portal (TestClient or the thread's uvicorn) reads the new version at once."""
    from web import processing_rules

    for lang in ("zh", "en"):
        text = processing_rules.path(lang).read_text(encoding="utf-8")
        (folder / f"{version}.{lang}.md").write_text(
            text + ("\n新增：评审专家的银行账户仅财务人员可见。\n" if lang == "zh" else
                    "\nNew: an expert's bank account is seen by finance staff only.\n"),
            encoding="utf-8")
    monkeypatch.setattr(processing_rules, "FOLDER", folder)
    monkeypatch.setattr(processing_rules, "VERSION", version)
    return version
