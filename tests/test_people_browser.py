"""People come in by themselves, in a real browser (Debian's chromium, driven by Playwright):
an invitation sets a password, the finance role enrols its second factor at its first
sign-in, signs in again with a recovery code, forgets the password and resets it."""
from __future__ import annotations

import re

import portal
import pytest
import system
from portal import served
from test_people import _eml_link
from worlds import Cli

CHROMIUM = system.CHROMIUM
pytestmark = pytest.mark.skipif(bool(system.missing("chromium")),
                                reason=system.missing("chromium") or "")


def test_invitation_password_second_factor_and_reset_in_the_browser(new_db, tmp_path,
                                                                     monkeypatch):
    import pyotp
    from playwright.sync_api import sync_playwright

    db = new_db("starfund", world=portal.PORTAL)
    cli = Cli(db)
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("STARFUND_TWO_FACTOR_ROLES", "finance approver")
    with served(db) as base, sync_playwright() as p:
        monkeypatch.setenv("STARFUND_PORTAL_URL", base)
        cli("user", "invite", "wang-fang", "--role", "finance", "--email", "wf@example.org",
            actor="approver-wang")
        cli("notify", "send", "--outbox", outbox)
        invite = _eml_link(outbox, "account_invitation")
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(f"{base}/invite/{invite}")
            assert "wang-fang" in page.inner_text("h1")
            page.fill("input[name=password]", "1234567890")
            page.fill("input[name=again]", "1234567890")
            page.click("form.card button[type=submit]")
            assert "这个密码太常见" in page.inner_text("p.flash")
            page.fill("input[name=password]", "wang's own long secret")
            page.fill("input[name=again]", "wang's own long secret")
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/login")
            assert "密码已设置" in page.inner_text("p.flash")
            page.goto(f"{base}/invite/{invite}")           # a used link
            assert "404" in page.inner_text("main")                # not there any more

            # first sign-in: the finance role enrols its second factor
            def sign_in(password: str) -> None:
                page.goto(f"{base}/login")
                page.fill("input[name=name]", "wang-fang")
                page.fill("input[name=password]", password)
                page.click("form.card button[type=submit]")
                page.wait_for_load_state()
            sign_in("wang's own long secret")
            page.wait_for_url("**/login/enrol")
            assert page.locator("div.qr svg").count() == 1
            secret = page.inner_text("#secret")
            page.fill("#code", "000000")
            page.click("form.card button[type=submit]")
            assert "验证码不对" in page.inner_text("p.flash")
            page.fill("#code", pyotp.TOTP(secret).now())
            page.click("form.card button[type=submit]")
            codes = [c.strip() for c in page.inner_text("#recovery-codes").split()]
            assert len(codes) == 10
            page.click("text=继续")
            page.wait_for_url("**/staff")
            page.click("header form button")                # log out

            # again: a wrong code, then a recovery code
            sign_in("wang's own long secret")
            page.wait_for_url("**/login/code")
            page.fill("#code", "123456")
            page.click("form.card button[type=submit]")
            assert "验证码不对" in page.inner_text("p.flash")
            page.fill("#code", codes[0])
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/staff")
            page.goto(f"{base}/account")
            assert "已启用" in page.inner_text("main")
            page.click("header form button")

            # a forgotten password: the same answer for anyone; the link resets it once
            page.goto(f"{base}/login")
            page.click("text=忘记密码？")
            page.fill("input[name=name]", "nobody-here")
            page.click("form.card button[type=submit]")
            unknown = page.inner_text("p.flash")
            page.goto(f"{base}/forgot")
            page.fill("input[name=name]", "wf@example.org")
            page.click("form.card button[type=submit]")
            assert page.inner_text("p.flash") == unknown
            cli("notify", "send", "--outbox", outbox)
            reset = _eml_link(outbox, "password_reset")
            page.goto(f"{base}/reset/{reset}")
            page.fill("input[name=password]", "a brand new long secret")
            page.fill("input[name=again]", "a brand new long secret")
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/login")
            sign_in("wang's own long secret")
            assert "账号或密码错误" in page.inner_text("main")
            sign_in("a brand new long secret")
            page.wait_for_url("**/login/code")
            page.fill("#code", codes[1])
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/staff")
        finally:
            browser.close()
    events = [e["action"] for e in __import__("json").loads(
        cli("audit", "query", "--limit", "0", "--json").output)]
    for act in ("account_invite", "account_invite_accept", "account_2fa_enrol",
                "account_reset_request", "account_password_reset"):
        assert act in events, act
    assert not re.search(invite, cli("audit", "query", "--limit", "0", "--json").output)
