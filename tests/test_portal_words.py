"""Every word a user reads is in the language they chose: the pages of every role walked in
Chinese and in English, after a year's work has left applications in many states, messages,
deadlines, objections and reasons; and the refusals a user meets (a wrong password, a missing
申报书, an amount over the cap, a file that is not what it says, a score out of range, a move
the role may not make). A page fails on English words in Chinese, or on a raw id (a state,
trigger, deadline, message kind or field name as the code spells it) in either language."""
from __future__ import annotations

import html as markup
import re

import portal
import pytest
from portal import CALL, client, csrf_of, login
from worlds import STAR_CALL, Cli

from lifecycle.core import clock

APP5, APP6 = f"{CALL}-00001", f"{CALL}-00002"
ALLOWED = {"starfund", "English", "CSV", "XLSX", "PDF", "HTML", "SHA", "TOML", "SVG", "MB", "KB",
           "JPEG", "PNG", "DOCX", "QR", "CSRF", "ID", "HTTPS", "IP", "Word", "Excel", "Office"}
"""Words a Chinese page may show: names of formats and of the product, the language switch."""
SKIP = re.compile(r'<(script|style|pre|textarea)\b.*?</\1>|<[^>]*class="[^"]*\b(payload|hash)\b'
                  r'[^"]*"[^>]*>.*?</[^>]+>', re.S)
"""Left out: a message's own body (pre: as it was sent), a trail event's recorded details and
a file's hash (the record itself, shown as written)."""


def visible(page: str) -> str:
    """What a reader sees: the text, and the attributes shown (labels drawn from data-label,
    alt text, placeholders, titles)."""
    page = SKIP.sub(" ", page)
    shown = re.findall(r'\s(?:data-label|alt|placeholder|title|aria-label)="([^"]*)"', page)
    body = re.sub(r"<head>.*?</head>", " ", page, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    return markup.unescape(" ".join([text, *shown]))


def raw_ids() -> set[str]:
    """Every id the code spells: states, triggers, deadline and message kinds, roles."""
    from lifecycle import kinds
    from states import roles

    ids = set(roles.ROLE_NAMES)
    for kind in kinds.all_kinds():
        workflow = kind.workflow
        ids |= {s.name for s in workflow.states} | {m.trigger for m in workflow.moves}
        for s in workflow.states:
            ids |= {n.kind for n in s.notify} | {d.kind for d in s.schedule}
    return {i for i in ids if "_" in i or len(i) > 3}


def offending(text: str, lang: str, names: set[str], ids: set[str]) -> list[str]:
    """English in a Chinese page; raw ids (with an underscore, or a state or trigger as the
    code spells it where the page is Chinese) in either."""
    out = []
    text = re.sub(r"[\w.+-]+@[\w.-]+", " ", text)                 # addresses: data
    for token in re.findall(r"[A-Za-z0-9_.:/\-★]+", text):
        if token.startswith(".") and token[1:].lower() in ("pdf", "docx", "xlsx", "png", "jpg",
                                                            "csv", "zip", "html"):
            continue                                              # a file's extension: data
        word = token.strip(".:/-")
        if not word or word in names or any(ch.isdigit() for ch in word) or word in ALLOWED:
            continue
        if re.fullmatch(r"[\w\-]+\.(pdf|docx|xlsx|png|jpg|csv|zip|html|toml)", word):
            continue                                              # a file's name: data
        if "_" in word:
            out.append(word)
        elif lang == "zh" and re.search(r"[A-Za-z]{2}", word):
            out.append(word)
    return out


@pytest.fixture
def year(new_db, tmp_path):
    """A year's work: S005's project awarded after an objection was dismissed, S006's not
    proposed; a star call open for self-evaluation; everything through the CLI's acts."""
    db = new_db("starfund", world=portal.IN_REVIEW)
    cli = Cli(db)
    cli("call", "create", STAR_CALL, now="2025-04-10")
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
    cli("objection", "file", APP5, "--by", "赵六", "--contact", "13900000000", "--reason",
        "预算重复", now="2025-05-10", actor="officer-li")
    cli("objection", "resolve", "1", "--dismiss", "--reason", "预算不重复", now="2025-05-11",
        actor="approver-wang")
    clock.set_now("2025-05-12T10:00")
    return db


def _walk(db: str, who: str | None, lang: str, paths: list[str], names: set[str],
          ids: set[str], bad: dict) -> None:
    c = client(db)
    if who:
        assert login(c, who).status_code == 303
    if lang == "en":
        c.get("/lang/en")
    for path in paths:
        r = c.get(path)
        assert r.status_code < 500, (who, path)
        text = visible(r.text)
        words = offending(text, lang, names, ids)
        if words:
            bad[(who, lang, path)] = [_around(text, word) for word in sorted(set(words))[:8]]


def _around(text: str, word: str) -> str:
    """The word with what stands around it (to find it on the page)."""
    i = text.find(word)
    return re.sub(r"\s+", " ", text[max(0, i - 30):i + len(word) + 30])


def test_every_page_in_both_languages(year):
    db = year
    names = {*portal.ACCOUNTS, "admin-test", "auditor-test", "finance-test", "root"}
    ids = raw_ids()
    pages = {
        None: ["/", "/login", "/forgot", "/privacy", "/archive", f"/notice/{CALL}",
               "/no/such/page"],
        "s005": ["/society", f"/app/{APP5}", "/account", f"/society/declare/{CALL}",
                 "/society/star/2025-star", f"/app/{APP6}"],
        "s006": ["/society", f"/app/{APP6}", f"/object/{APP5}"],
        "e001": ["/expert", f"/app/{APP5}"],
        "officer-li": ["/staff", f"/staff/call/{CALL}", f"/app/{APP5}", f"/app/{APP6}",
                       "/staff/accounts", "/staff/call/2025-star", "/account"],
        "coord-zhou": [f"/staff/call/{CALL}", f"/staff/call/{CALL}/advance?trigger=close_review"],
        "approver-wang": [f"/app/{APP5}", "/staff/audit", "/staff/accounts",
                          f"/staff/call/{CALL}/advance?trigger=close_notice",
                          f"/staff/audit?call={CALL}&offset=50"],
        "finance-chen": [f"/staff/call/{CALL}", "/staff/audit"],
        "auditor-sun": ["/staff/audit", f"/app/{APP5}"],
    }
    bad: dict = {}
    for lang in ("zh", "en"):
        for who, paths in pages.items():
            _walk(db, who, lang, paths, names, ids, bad)
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


def _shown(c, r) -> str:
    """The message a request left: the flash of the page it redirected to, else its page."""
    if r.status_code == 303:
        return portal.flash_after(c, r)
    return visible(r.text)


def test_refusals_in_both_languages(new_db):
    """What a user meets when refused, in Chinese and in English: each message in the page's
    language, with no raw id, and saying something (never empty)."""
    db = new_db("starfund", world=portal.IN_REVIEW)
    ids = raw_ids()
    names = {*portal.ACCOUNTS, "admin-test"}
    seen: dict = {}
    for lang in ("zh", "en"):
        def note(what: str, text: str, lang: str = lang) -> None:
            assert text.strip(), (lang, what)
            words = offending(text, lang, names, ids)
            if words:
                seen[(lang, what)] = [_around(text, w) for w in words[:6]]

        clock.set_now(portal.OPEN)
        stranger = client(db)
        if lang == "en":
            stranger.get("/lang/en")
        note("wrong password", visible(login(stranger, "s006", "not the password").text))
        s = client(db)
        login(s, "s005")
        if lang == "en":
            s.get("/lang/en")
        token = csrf_of(s, "/society")
        r = s.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "policy",
                                                     "title": "政策研究", "requested_amount": "x"})
        note("amount not a number", _shown(s, r))
        r = s.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "某类",
                                                     "title": "政策研究", "requested_amount": "9"})
        note("unknown category", _shown(s, r))
        r = s.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "policy",
                                                     "title": "政策研究", "requested_amount": "999999999"})
        app = r.headers["location"].rsplit("/", 1)[1]
        r = s.post(f"/app/{app}/edit", data={"csrf": token, "requested_amount": "40000",
                                             "category": "policy", "title": "政策研究二"})
        note("saved fields", _shown(s, r))
        r = s.post(f"/app/{app}/submit", data={"csrf": token})
        note("submit without its 申报书", _shown(s, r))
        r = s.post(f"/app/{app}/attach", data={"csrf": token, "kind": "application_form"},
                   files={"file": ("申报书.pdf", b"<html></html>", "application/pdf")})
        note("a page called .pdf", _shown(s, r))
        r = s.post(f"/app/{app}/attach", data={"csrf": token, "kind": "某种"},
                   files={"file": ("申报书.pdf", portal.pdf_bytes(), "application/pdf")})
        note("an unknown kind of file", _shown(s, r))
        r = s.post(f"/app/{APP6}/submit", data={"csrf": token})
        note("another society's application", _shown(s, r))
        note("no such page", visible(s.get("/no/such/page").text))
        note("a staff page", visible(s.get("/staff").text))

        clock.set_now(portal.REVIEWING)
        e = client(db)
        login(e, "e001")
        if lang == "en":
            e.get("/lang/en")
        link = re.search(r'href="/review/(\d+)"', e.get("/expert").text).group(1)
        token = csrf_of(e, "/expert")
        r = e.post(f"/review/{link}", data={"csrf": token, "action": "submit",
                                            "score_content": "十"})
        note("a score that is not a number", _shown(e, r))
        fields = {f"score_{k}": "10" for k in ("content", "method", "team", "outputs", "budget")}
        r = e.post(f"/review/{link}", data={"csrf": token, "action": "submit", **fields,
                                            "score_content": "999"})
        note("a score out of range", _shown(e, r))
        r = e.post(f"/review/{link}/recuse", data={"csrf": token, "reason": ""})
        note("a recusal without a reason", _shown(e, r))

        o = client(db)
        login(o, "officer-li")
        if lang == "en":
            o.get("/lang/en")
        note("a move the role may not make",
             visible(o.get(f"/staff/call/{CALL}/advance?trigger=close_review").text))
        note("nothing to move",
             visible(o.get(f"/staff/call/{CALL}/advance?trigger=close_declaration").text))
        note("no such trigger", visible(o.get(f"/staff/call/{CALL}/advance?trigger=x").text))
        note("a bad date", visible(o.get("/staff/audit?since=昨天").text))
        f = client(db)
        login(f, "finance-chen")
        if lang == "en":
            f.get("/lang/en")
        note("the trail, for finance", visible(f.get("/staff/audit").text))
    assert not seen, "\n".join(f"{k}: {v}" for k, v in seen.items())


def test_every_trigger_deadline_and_act_is_labelled():
    """Each kind's triggers and deadlines carry a label in both languages, declared beside
    them in states/ (a stage's TRIGGERS and DEADLINES); every act the code writes to the trail
    is labelled (web/words.py), so no page falls back to an id."""
    from pathlib import Path

    from lifecycle import kinds
    from web import words

    for kind in kinds.all_kinds():
        wf = kind.workflow
        for t in {m.trigger for m in wf.moves}:
            zh, _, en = wf.trigger_label(t).partition(" ")
            assert en and not zh.isascii(), (kind.name, t)
        for kind_ in {d.kind for s in wf.states for d in s.schedule}:
            for shown in (kind_, f"{kind_}:remind:7d"):
                zh, _, en = wf.deadline_label(shown).partition(" ")
                assert en and not zh.isascii(), (kind.name, shown)
    root = Path(words.__file__).resolve().parent.parent
    spelled = set()
    for folder in ("lifecycle", "notifications", "states", "web"):
        for path in (root / folder).rglob("*.py"):
            spelled |= set(re.findall(r'Event\(\s*"([a-z0-9_]+)"', path.read_text("utf-8")))
    spelled |= {"consent", "database_init", "notification_sent", "notification_failed",
                "deadline_fired", "reminder_skipped", "star_revoked", "model_title_revoked"}
    triggers = {m.trigger for k in kinds.all_kinds() for m in k.workflow.moves}
    assert spelled - set(words.ACTIONS) - triggers == set()
    for name in words.ACTIONS:
        zh, _, en = words.ACTIONS[name].partition(" ")
        assert en and not zh.isascii(), name
