"""The portal's doors: every route walked as every role and as a stranger, guessing ids that
are not theirs; CSRF, login throttling, cookies, headers, and uploads checked by content."""
from __future__ import annotations

import re

import portal
import pytest
from portal import CALL, PASSWORD, client, csrf_of, login
from sqlalchemy import func, select
from starlette.routing import Route

from lifecycle.core import clock
from lifecycle.core.db import make_engine
from lifecycle.core.models import Assignment, AuditEvent

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"  # S005's and S006's
STAFF = ("officer-li", "coord-zhou", "approver-wang", "finance-chen", "auditor-sun")
PUBLIC = {"/", "/login", "/lang/{lang}", "/notice/{call}", "/privacy",
          # the doors of people without a session (tests/test_people.py: single-use links)
          "/login/code", "/login/enrol", "/invite/{token}", "/reset/{token}", "/forgot",
          # anyone's, saying nothing secret; /metrics only with its token (tests/test_health.py)
          "/healthz", "/metrics"}


@pytest.fixture
def reviewing(new_db):
    db = new_db("starfund", world=portal.IN_REVIEW)
    clock.set_now(portal.REVIEWING)
    return db


def _events(db: str) -> int:
    e = make_engine(db)
    try:
        with e.connect() as conn:
            return conn.execute(select(func.count()).select_from(AuditEvent)).scalar()
    finally:
        e.dispose()


def _assignments(db: str) -> dict[str, dict[str, int]]:
    """assignment id per (expert, application)."""
    e = make_engine(db)
    try:
        with e.connect() as conn:
            out: dict[str, dict[str, int]] = {}
            for a in conn.execute(select(Assignment.id, Assignment.expert_id,
                                         Assignment.application_id)):
                out.setdefault(a.expert_id, {})[a.application_id] = a.id
            return out
    finally:
        e.dispose()


def _file_of(c, app_id: str) -> int:
    m = re.search(r'href="/files/(\d+)"', c.get(f"/app/{app_id}").text)
    assert m, f"no file on {app_id}'s page"
    return int(m.group(1))


def _foreign(account: str, mine: dict[str, str]) -> list[dict[str, str]]:
    """Path parameters naming objects that are not `account`'s (or do not exist)."""
    ours = mine.get(account, {})
    apps = [a for a in (APP5, APP6, f"{CALL}-99999", "x' OR 1=1") if a not in ours.get("apps", ())]
    return [{"app": a, "file": f, "assignment": s, "call": c, "expert": "E001", "fmt": "csv",
             "lang": "en", "name": "funnel", "kind": "notice", "token": "not-a-token"}
            for a, f, s, c in zip(apps, ["999999", *ours.get("foreign_files", [])] * 4,
                                  [*ours.get("foreign_assignments", []), "999999", "abc"] * 2,
                                  ["nope", CALL, "nope", CALL])]


def test_every_route_refuses_strangers_and_other_roles(reviewing):
    """Walk every route of the app: a stranger is sent to log in (GET) or refused (POST);
    each account, guessing ids of objects not its own and routes not for its role, gets 403
    or 404, and nothing it does leaves a trace in the trail."""
    db = reviewing
    ids = _assignments(db)
    officer = client(db)
    login(officer, "officer-li")
    file5, file6 = _file_of(officer, APP5), _file_of(officer, APP6)
    mine = {  # what each account may legitimately reach, and what to guess instead
        "s005": {"apps": (APP5,), "foreign_files": [str(file6)]},
        "s006": {"apps": (APP6,), "foreign_files": [str(file5)]},
        "e001": {"apps": (APP5, APP6), "foreign_assignments": [str(ids["E002"][APP5])]},
        "e002": {"apps": (APP5, APP6), "foreign_assignments": [str(ids["E001"][APP6])]},
    }
    from web.app import create_app

    routes = [r for r in create_app(make_engine(db)).routes if isinstance(r, Route)]
    before = _events(db)
    stranger = client(db)
    for route in routes:
        for method in route.methods - {"HEAD"}:
            path = route.path.format(app=APP5, file=file5, assignment=ids["E001"][APP5],
                                     token="not-a-token",
                                     call=CALL, expert="E001", fmt="csv", lang="en",
                                     name="funnel", kind="notice")
            r = stranger.request(method, path, data={"csrf": "x"})
            if route.path in PUBLIC:
                continue
            if method == "GET":
                assert r.status_code == 303 and r.headers["location"].startswith("/login"), \
                    (method, path, r.status_code)
            else:
                assert r.status_code == 403, (method, path, r.status_code)
    checked = 0
    for account in ("s005", "s006", "e001", "e002", *STAFF):
        c = client(db)
        assert login(c, account).status_code == 303
        token = csrf_of(c, "/")
        for route in routes:
            if route.path in PUBLIC or route.path in ("/login", "/logout", "/me/data.zip", "/account",
                                                     "/account/password",
                                                     "/account/sessions/end"):
                continue  # /me/data.zip: every account's own copy (tests/test_personal.py)
            for params in _foreign(account, mine):
                path = route.path.format(**params)
                if path == route.path and "{" in route.path:
                    continue
                own_area = _own_area(account, route.path)
                if own_area and not any(k in route.path for k in ("{app}", "{file}",
                                                                  "{assignment}")):
                    continue  # its own home pages (checked by the round)
                if account in STAFF and any(k in route.path for k in ("{app}", "{file}")) \
                        and "99999" not in path and "OR" not in path and "object" not in path:
                    continue  # staff see every application: nothing is foreign to them
                for method in route.methods - {"HEAD"}:
                    if path.endswith("/advance") and method == "GET":
                        path += "?trigger=close_review"
                    r = c.request(method, path, data={"csrf": token, "reason": "x", "by": "x",
                                                      "contact": "x", "kind": "budget",
                                                      "trigger": "close_review",
                                                      "action": "submit"})
                    checked += 1
                    assert r.status_code in (403, 404), (account, method, path, r.status_code,
                                                         r.text[:300])
                    assert "学会学术年会" not in r.text or account in ("s005", "e001", "e002")
    assert checked > 150
    assert _events(db) == before, "a refused request wrote to the trail"


def _own_area(account: str, path: str) -> bool:
    if path.startswith("/privacy"):  # agreeing to the rules: societies' and experts' only
        return account[:2] in ("s0", "e0")
    if account.startswith("s0"):
        return path.startswith("/society") or path.startswith("/app") or \
            path.startswith("/object") or path.startswith("/files")
    if account.startswith("e0"):
        return path.startswith("/expert") or path.startswith("/review") or \
            path.startswith("/files") or path == "/app/{app}"
    allowed = {"officer-li": ("/staff",), "coord-zhou": ("/staff",),
               "approver-wang": ("/staff",), "finance-chen": ("/staff",),
               "auditor-sun": ("/staff",)}[account]
    if path.startswith("/staff/accounts") and account not in ("officer-li", "approver-wang"):
        return False  # accounts are run by officers (invitations) and approvers
    if path.startswith("/staff/audit") and account in ("coord-zhou", "finance-chen"):
        return False
    if "remind" in path and account not in ("officer-li", "coord-zhou"):
        return False
    if path.endswith("/advance") and account != "coord-zhou":
        return False  # close_review is the coordinator's (and the scheduler's)
    return path.startswith(allowed)


def test_posts_need_the_sessions_csrf_token(reviewing):
    c = client(reviewing)
    login(c, "e001")
    ids = _assignments(reviewing)
    before = _events(reviewing)
    for token in ("", "0" * 64):
        r = c.post(f"/review/{ids['E001'][APP5]}", data={
            "csrf": token, "action": "save", "score_content": "10"})
        assert r.status_code == 403 and "CSRF" in r.text
    other = client(reviewing)
    login(other, "e002")
    r = c.post(f"/review/{ids['E001'][APP5]}", data={   # another session's token
        "csrf": csrf_of(other, "/expert"), "action": "save", "score_content": "10"})
    assert r.status_code == 403
    assert _events(reviewing) == before


def test_logins_are_throttled_and_cookies_guarded(reviewing):
    c = client(reviewing)
    for _ in range(5):
        r = login(c, "s005", "wrong password!")
        assert r.status_code == 401 and "wrong account name or password" in r.text
    r = login(c, "s005")  # the right password, too late
    assert r.status_code == 401 and "too many failed logins" in r.text
    d = client(reviewing)
    r = login(d, "s006")
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie"
                  and v.startswith("starfund_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    from starlette.testclient import TestClient

    from web.app import create_app

    https = TestClient(create_app(make_engine(reviewing)), base_url="https://portal.example",
                       follow_redirects=False)
    r = login(https, "s006")
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie"
                  and v.startswith("starfund_session="))
    assert "Secure" in cookie


def test_headers_forbid_framing_and_inline_script(reviewing):
    c = client(reviewing)
    r = c.get("/login")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    from pathlib import Path

    for page in (Path(portal.__file__).parent.parent / "web" / "templates").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text and "style=" not in text, page
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", text), page  # no inline handlers


def test_uploads_are_checked_by_content_and_downloaded_as_attachments(new_db):
    db = new_db("starfund", world=portal.PORTAL)
    clock.set_now(portal.OPEN)
    c = client(db)
    login(c, "s005")
    token = csrf_of(c, "/society")
    r = c.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "policy",
                                                 "title": "政策研究", "requested_amount": "30000",
                                                 "summary": "摘要"})
    app = r.headers["location"].rsplit("/", 1)[1]
    before = _events(db)
    for name, data in (("申报书.pdf", b"<html><script>alert(1)</script></html>"),
                       ("申报书.pdf", b"MZ\x90\x00" + b"\x00" * 200),
                       ("申报书.docx", b"PK\x03\x04" + b"\x00" * 100)):
        r = c.post(f"/app/{app}/attach", data={"csrf": token, "kind": "application_form"},
                   files={"file": (name, data, "application/pdf")})
        assert r.status_code == 303
        shown = c.get(r.headers["location"]).text
        assert "told by content, not by name" in shown and name in shown
    assert _events(db) == before
    r = c.post(f"/app/{app}/attach", data={"csrf": token, "kind": "application_form"},
               files={"file": ("report.bin", portal.pdf_bytes(), "application/octet-stream")})
    page = c.get(f"/app/{app}").text
    file_id = re.search(r'href="/files/(\d+)"', page).group(1)
    r = c.get(f"/files/{file_id}")
    assert r.status_code == 200 and r.content == portal.pdf_bytes()
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-type"] == "application/octet-stream"
    big = c.post(f"/app/{app}/attach", content=b"x" * 10,
                 headers={"content-length": str(30 * 2**20), "content-type": "text/plain"})
    assert big.status_code == 413


def test_a_disabled_account_loses_its_session(reviewing):
    c = client(reviewing)
    login(c, "s005")
    assert c.get("/society").status_code == 200
    portal_cli = portal.Cli(reviewing)
    portal_cli("user", "disable", "s005", now=portal.REVIEWING)
    clock.set_now(portal.REVIEWING)
    r = c.get("/society")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert login(client(reviewing), "s005", PASSWORD).status_code == 401
