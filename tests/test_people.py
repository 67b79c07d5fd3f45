"""People come in by themselves (issue 23, first steps): the first account of a live database
can act at once whoever the OS user is, and a new password ends the account's other sessions."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from portal import PASSWORD, client, login

from lifecycle.core import clock


def run(db: str, *args, input: str | None = None):
    from cli import main

    result = CliRunner().invoke(main, ["--db", db, *map(str, args)], input=input,
                                catch_exceptions=False)
    clock.set_now(None)
    return result


@pytest.fixture(autouse=True)
def _no_default_actor(monkeypatch):
    """Who acts comes from the OS user or a login here, not conftest's STARFUND_ACTOR."""
    monkeypatch.delenv("STARFUND_ACTOR", raising=False)


def test_the_first_account_of_a_live_database_acts_at_once_whoever_runs_init(db_url):
    r = run(db_url, "init", "--account", "admin-first", "--password-stdin",
            input="a long first password\n")
    assert r.exit_code == 0, r.output
    assert "you are logged in as admin-first" in r.output
    who = run(db_url, "whoami")
    assert who.exit_code == 0 and who.output.startswith("admin-first: approver, officer"), who.output
    added = run(db_url, "user", "add", "li-lei", "--role", "officer")
    assert added.exit_code == 0, added.output
    run(db_url, "logout")
    again = run(db_url, "login", "admin-first", "--password-stdin",
                input="a long first password\n")
    assert again.exit_code == 0 and "logged in as admin-first" in again.output


def test_a_weak_first_password_founds_nothing(db_url, _own_config_dir):
    r = run(db_url, "init", "--account", "admin-first", "--password-stdin", input="short\n")
    assert r.exit_code == 1 and "at least 10 characters" in r.output
    assert list(_own_config_dir.rglob("*.key")) == []
    who = run(db_url, "whoami")
    assert who.exit_code == 1 and "starfund init" in who.output


def test_a_new_password_ends_the_accounts_portal_sessions(new_db):
    import portal

    from cli import main

    db = new_db("starfund", world=portal.PORTAL)
    c = client(db)
    assert login(c, "s005").status_code == 303
    assert c.get("/society").status_code == 200
    out = CliRunner().invoke(main, ["--db", db, "--as", "approver-wang", "user", "password",
                                    "s005", "--password-stdin"],
                             input=PASSWORD + " changed\n", catch_exceptions=False)
    assert out.exit_code == 0 and "1 other session(s) of it ended" in out.output, out.output
    page = c.get("/society")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert login(client(db), "s005").status_code == 401
    assert login(client(db), "s005", PASSWORD + " changed").status_code == 303


def _eml_link(outbox, kind: str) -> str:
    """The link in the newest .eml of `kind` the file channel delivered."""
    import email
    import re

    files = sorted(outbox.glob(f"{kind}_*.eml"), key=lambda p: p.stat().st_mtime)
    assert files, f"no {kind} message in {outbox}"
    msg = email.message_from_bytes(files[-1].read_bytes())
    body = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    text = body.get_payload(decode=True).decode(body.get_content_charset() or "utf-8")
    m = re.search(r"/(?:invite|reset)/([A-Za-z0-9_-]{20,})", text)
    assert m, text
    return m.group(1)


def test_an_invitation_sets_a_password_once_and_its_link_is_never_stored(cli, tmp_path):
    from worlds import fingerprint, json_of, societies, write_csv

    from lifecycle.acts import invitations
    from lifecycle.core.db import make_engine

    cli("society", "import", write_csv(tmp_path / "s.csv", societies(3)), now="2025-02-01")
    r = cli("user", "invite", "s001-contact", "--role", "society", "--society", "S001",
            "--email", "s1@example.org", now="2025-02-01")
    assert "invitation to s001-contact queued" in r.output
    outbox = tmp_path / "outbox"
    cli("notify", "send", "--outbox", outbox, now="2025-02-01T10:00")
    token = _eml_link(outbox, "account_invitation")
    dump = str(fingerprint(cli.db))
    assert token not in dump                      # only its hash is kept
    e = make_engine(cli.db)
    try:
        with e.begin() as conn:
            try:
                invitations.accept(conn, token, "password")
                raise AssertionError("a weak password was accepted")
            except Exception as refused:
                assert "至少需要 10 个字符" in str(refused)
        with e.begin() as conn:
            assert invitations.accept(conn, token, "my own long secret 7") == "s001-contact"
        with e.begin() as conn:
            try:
                invitations.accept(conn, token, "another long secret 8")
                raise AssertionError("a used link was accepted twice")
            except Exception as refused:
                assert "not valid any more" in str(refused)
    finally:
        e.dispose()
    events = json_of(cli("audit", "query", "--trigger", "account_invite_accept", "--json"))
    assert [ev["payload"]["account"] for ev in events] == ["s001-contact"]
    assert token not in str(json_of(cli("audit", "query", "--limit", "0", "--json")))
    again = cli("user", "invite", "s001-contact", ok=False)
    assert again.exit_code == 1 and "has a password already" in again.output


def test_import_with_accounts_invites_each_contact_once_held_for_review(cli, tmp_path):
    from worlds import json_of, societies, write_csv

    path = write_csv(tmp_path / "s.csv", societies(3))
    r = cli("society", "import", path, "--accounts", now="2025-02-01")
    assert "3 invited (held for review" in r.output
    again = cli("society", "import", path, "--accounts", now="2025-02-02")
    assert "0 invited" in again.output
    names = [a["name"] for a in json_of(cli("user", "list", "--json"))]
    assert [n for n in names if n.endswith("-contact")] == [
        "s001-contact", "s002-contact", "s003-contact"]
    held = json_of(cli("notify", "list", "--status", "held", "--json"))
    assert len([m for m in held if m["kind"] == "account_invitation"]) == 3


def test_a_forgotten_password_is_answered_alike_and_rate_limited(cli, tmp_path):
    from sqlalchemy import func, select

    from lifecycle.acts import invitations
    from lifecycle.core.db import make_engine
    from lifecycle.core.models import AccountLink, AuditEvent

    cli("user", "add", "wang-fang", "--role", "finance", "--email", "wf@example.org")
    e = make_engine(cli.db)

    def counts():
        with e.connect() as conn:
            return (conn.execute(select(func.count()).select_from(AccountLink)).scalar(),
                    conn.execute(select(func.count()).select_from(AuditEvent)).scalar())
    try:
        before = counts()
        with e.begin() as conn:
            invitations.request_reset(conn, "nobody-at-all")
        assert counts() == before                 # an unknown name: nothing at all
        for _ in range(5):
            with e.begin() as conn:
                invitations.request_reset(conn, "wf@example.org")
        assert counts()[0] == before[0] + 3       # three an hour, then nothing more
    finally:
        e.dispose()
    outbox = tmp_path / "outbox"
    cli("notify", "send", "--outbox", outbox)
    token = _eml_link(outbox, "password_reset")
    e = make_engine(cli.db)
    try:
        with e.begin() as conn:
            assert invitations.accept(conn, token, "wang fang's new secret",
                                      purpose="reset") == "wang-fang"
    finally:
        e.dispose()


def test_a_strangers_failed_logins_do_not_lock_the_owner_out_behind_a_proxy(new_db):
    """Behind a trusted proxy (uvicorn believes X-Forwarded-For from loopback, as `serve
    --trusted-proxies` sets): 50 wrong passwords for a contact's account from a stranger's address slow
    the stranger only; the owner signs in from theirs, over https with a Secure cookie, and
    is told their account is being tried."""
    import re

    import httpx2 as httpx
    import portal
    from worlds import Cli, json_of

    from cli import main

    db = new_db("starfund", world=portal.PORTAL)
    added = CliRunner().invoke(main, ["--db", db, "--as", "approver-wang", "user", "add",
                                      "s007-contact", "--role", "society", "--society", "S007",
                                      "--email", "s7@example.org", "--password-stdin"],
                               input=PASSWORD + "\n", catch_exceptions=False)
    assert added.exit_code == 0, added.output
    stranger, owner = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9",
                                                           "X-Forwarded-Proto": "https"}
    with portal.served(db) as base, httpx.Client(base_url=base, follow_redirects=False,
                                                 timeout=60) as c:
        def attempt(headers, password):
            # the form over plain http (httpx keeps no Secure cookie for http), the POST as
            # the proxy forwards https
            page = c.get("/login", headers={"X-Forwarded-For": headers["X-Forwarded-For"]})
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            return c.post("/login", headers=headers, data={
                "name": "s007-contact", "password": password, "csrf": token})
        answers = [attempt(stranger, f"guess number {i}") for i in range(50)]
        assert [r.status_code for r in answers] == [401] * 50
        assert "登录失败次数过多" in answers[-1].text, re.sub(r"<[^>]+>", " ", answers[-1].text)[-600:]
        c.cookies.clear()
        r = attempt(owner, PASSWORD)
        assert r.status_code == 303, r.text[:300]
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie"
                      and v.startswith("starfund_session="))
        assert "Secure" in cookie
    warned = [m for m in json_of(Cli(db)("notify", "list", "--json"))
              if m["kind"] == "sign_in_attempts"]
    assert [m["to"] for m in warned] == ["s7@example.org"], warned


def test_an_approver_clears_the_slowed_sign_ins_of_an_account(new_db):
    import portal
    from worlds import Cli

    db = new_db("starfund", world=portal.PORTAL)
    for _ in range(5):
        assert login(client(db), "s005", "wrong password!").status_code == 401
    assert "登录失败次数过多" in login(client(db), "s005").text
    refused = Cli(db)("user", "unlock", "s005", actor="officer-li", ok=False)
    assert refused.exit_code == 1 and "user.manage" in refused.output
    r = Cli(db)("user", "unlock", "s005", actor="approver-wang")
    assert "6 failed sign-in(s) of s005 forgotten" in r.output
    assert login(client(db), "s005").status_code == 303


def test_a_second_factor_takes_each_code_once_and_each_recovery_code_once(cli):
    import pyotp
    from worlds import fingerprint

    from lifecycle.core import audit, totp
    from lifecycle.core.db import make_engine

    cli("user", "add", "wang-fang", "--role", "finance")
    secret = totp.new_secret()
    assert totp.uri("wang-fang", secret).startswith("otpauth://totp/starfund:wang-fang?")
    assert totp.qr_svg(totp.uri("wang-fang", secret)).startswith("<svg")
    e = make_engine(cli.db)
    try:
        with e.begin() as conn:
            key = audit.chain_key(conn)
            try:
                totp.enrol(conn, key, "wang-fang", secret, "000000")
                raise AssertionError("a wrong first code enrolled")
            except Exception as refused:
                assert "the code does not match" in str(refused)
        with e.begin() as conn:
            codes = totp.enrol(conn, key, "wang-fang", secret, pyotp.TOTP(secret).now())
        assert len(codes) == 10 and len(set(codes)) == 10
        assert secret not in str(fingerprint(cli.db))          # sealed, not in clear
        with e.begin() as conn:        # the enrolling code was used: not again
            assert not totp.check(conn, key, "wang-fang", pyotp.TOTP(secret).now())
            assert totp.check(conn, key, "wang-fang", codes[0])
            assert not totp.check(conn, key, "wang-fang", codes[0])
    finally:
        e.dispose()
    own = cli("user", "reset-2fa", "admin-test", ok=False)
    assert own.exit_code == 1
    cli("user", "reset-2fa", "wang-fang")
    again = cli("user", "reset-2fa", "wang-fang", ok=False)
    assert again.exit_code == 1 and "no second factor" in again.output


def test_accounts_are_run_from_the_portal_through_the_same_acts(new_db):
    import portal
    from portal import csrf_of, flash_after
    from worlds import Cli, json_of

    db = new_db("starfund", world=portal.PORTAL)
    approver, officer, society = client(db), client(db), client(db)
    login(approver, "approver-wang")
    login(officer, "officer-li")
    login(society, "s005")
    assert society.get("/staff/accounts").status_code == 404
    page = approver.get("/staff/accounts").text
    assert 'data-account="s005"' in page and 'id="invite"' in page
    token = csrf_of(approver, "/staff/accounts")
    r = approver.post("/staff/accounts/invite", data={
        "csrf": token, "name": "s007-contact", "role": "society", "for": "S007",
        "email": "s7@example.org"})
    assert "已向 s007-contact 发出邀请" in flash_after(approver, r)
    r = officer.post("/staff/accounts/invite", data={
        "csrf": csrf_of(officer, "/staff/accounts"), "name": "boss-two", "role": "approver",
        "email": "b2@example.org"})
    assert r.status_code == 403 and "只能邀请学会联系人和评审专家" in r.text
    r = approver.post("/staff/accounts/auditor-sun", data={
        "csrf": token, "act": "grant", "role": "approver"})
    assert "approver" in flash_after(approver, r).lower()     # the pair is refused, named
    r = approver.post("/staff/accounts/s007-contact", data={"csrf": token, "act": "resend"})
    assert "已重新发送邀请" in flash_after(approver, r)
    r = approver.post("/staff/accounts/s006", data={"csrf": token, "act": "disable"})
    assert "已停用" in flash_after(approver, r)
    listed = {a["name"]: a for a in json_of(Cli(db)("user", "list", "--json"))}
    assert listed["s006"]["disabled_at"] and not listed["s007-contact"]["has_password"]
    assert "boss-two" not in listed and "approver" not in listed["auditor-sun"]["roles"]
    sent = [m for m in json_of(Cli(db)("notify", "list", "--json"))
            if m["kind"] == "account_invitation"]
    assert len(sent) == 2                       # the invitation, and the one sent again


def test_an_idle_portal_session_ends_and_a_used_one_goes_on(new_db):
    from datetime import timedelta

    import portal
    from worlds import execute

    db = new_db("starfund", world=portal.PORTAL)
    society, staff = client(db), client(db)
    assert login(society, "s005").status_code == 303
    assert login(staff, "officer-li").status_code == 303
    assert society.get("/society").status_code == 200
    # an hour without a request (written behind the engine's back: the wall clock is real)
    execute(db, "UPDATE account_tokens SET last_seen_at = :t, created_at = :t",
            t=clock.wall() - timedelta(hours=1))
    assert society.get("/society").status_code == 200            # 2 hours for a contact
    page = staff.get("/staff")                                    # 30 minutes for staff
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
