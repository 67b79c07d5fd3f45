"""Phones: every main page of every role at 390 px wide (an iPhone 12-15's width) in Debian's
chromium, with no horizontal scrolling of the page. A table may be wider than the screen only
inside its own scrolling box, or become cards. Screenshots go to test-output/phone/<backend>/."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import portal
import pytest
import system
from databases import backend
from portal import CALL, PASSWORD, served
from worlds import STAR_CALL, Cli

from lifecycle.core import clock

OUT = Path(__file__).resolve().parent.parent / "test-output" / "phone"
WIDTH = 390
APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"

pytestmark = pytest.mark.skipif(bool(system.missing("chromium")),
                                reason=system.missing("chromium") or "")

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const boxed = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1 && !boxed(el))
      out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' ' +
               Math.round(r.right) + 'px: ' + (el.textContent || '').trim().slice(0, 40));
  }
  return {scroll: document.documentElement.scrollWidth, width: width, wide: out.slice(0, 5)};
}"""


def _login(browser, base: str, name: str):
    page = browser.new_page(viewport={"width": WIDTH, "height": 844}, locale="zh-CN",
                            device_scale_factor=1, is_mobile=True, has_touch=True)
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_load_state()
    return page


def _fits(page, base: str, path: str, shots: Path, seen: list[str], wide: list) -> None:
    """Open `path`; note it in `wide` when something makes the page wider than the screen."""
    r = page.goto(base + path)
    assert r is not None and r.status < 400, (path, r.status if r else None)
    page.wait_for_load_state()
    got = page.evaluate(OVERFLOW)
    name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "front"
    page.screenshot(path=shots / f"{len(seen):02d}-{name}.png", full_page=True)
    if got["scroll"] > WIDTH or got["wide"]:
        wide.append((path, got))
    seen.append(path)


def test_every_main_page_fits_a_phone(new_db, tmp_path):
    from playwright.sync_api import sync_playwright

    db = new_db("starfund", world=portal.IN_REVIEW)
    shots = OUT / backend()
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    cli = Cli(db)
    cli("call", "create", STAR_CALL, now="2025-04-10")
    clock.set_now(portal.REVIEWING)
    seen: list[str] = []
    wide: list = []
    with served(db) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=system.CHROMIUM)
        try:
            stranger = browser.new_page(viewport={"width": WIDTH, "height": 844},
                                        is_mobile=True, has_touch=True)
            for path in ("/", "/login", "/forgot", "/privacy", "/archive"):
                _fits(stranger, base, path, shots, seen, wide)
            s = _login(browser, base, "s005")
            for path in ("/society", f"/society/declare/{CALL}", f"/app/{APP5}", "/account"):
                _fits(s, base, path, shots, seen, wide)
            e = _login(browser, base, "e001")
            _fits(e, base, "/expert", shots, seen, wide)
            link = e.get_attribute("a[href^='/review/']", "href")
            _fits(e, base, link, shots, seen, wide)
            co = _login(browser, base, "coord-zhou")
            for path in ("/staff", f"/staff/call/{CALL}",
                         f"/staff/call/{CALL}/advance?trigger=close_review", f"/app/{APP5}"):
                _fits(co, base, path, shots, seen, wide)
            ap = _login(browser, base, "approver-wang")
            for path in ("/staff/accounts", "/staff/audit", "/staff/call/2025-star"):
                _fits(ap, base, path, shots, seen, wide)

            sheet = tmp_path / "scores.csv"
            sheet.write_text("expert_id,application_id,content,method,team,outputs,budget\n"
                             f"E001,{APP5},30,25,15,20,10\nE002,{APP5},29,24,15,19,10\n"
                             f"E001,{APP6},20,15,10,10,5\nE002,{APP6},21,14,10,10,5\n",
                             encoding="utf-8")
            cli("review", "import", CALL, sheet, now="2025-04-21", actor="coord-zhou")
            cli("advance", CALL, "close_review", now="2025-05-07", actor="coord-zhou")
            for trigger, at in (("rank", "2025-05-08"), ("propose", "2025-05-09"),
                                ("open_notice", "2025-05-09")):
                cli("advance", CALL, trigger, now=at, actor="approver-wang")
            clock.set_now("2025-05-12T10:00")
            s6 = _login(browser, base, "s006")
            for path in (f"/notice/{CALL}", f"/object/{APP5}", "/society"):
                _fits(s6, base, path, shots, seen, wide)
            cli("advance", CALL, "close_notice", now="2025-05-20", actor="approver-wang")
            clock.set_now("2025-06-10T10:00")
            for path in (f"/awards/{CALL}", "/archive", f"/notice/{CALL}"):
                _fits(stranger, base, path, shots, seen, wide)
            _fits(s6, base, "/society/star/2025-star", shots, seen, wide)
            fin = _login(browser, base, "finance-chen")
            _fits(fin, base, f"/staff/call/{CALL}", shots, seen, wide)
        finally:
            browser.close()
    assert not wide, "\n".join(f"{path}: {got}" for path, got in wide)
    assert len(seen) >= 26
