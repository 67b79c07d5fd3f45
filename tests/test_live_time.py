"""A live database: time is the clock's (--now and STARFUND_NOW refused, nothing written), every
event carries when it was written, the mode cannot be relabelled unseen; and who acts is a
known, enabled account (the OS user's, or a login's), with --as only for an officer acting
for a society or an expert, both names recorded.

On a live database the command line acts as the OS user unless logged in, so the live
worlds here are founded with `init --account <getpass.getuser()>`.
"""
from __future__ import annotations

import getpass
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from worlds import (
    CALL,
    EXAMPLE_CALL,
    Cli,
    audit_rows,
    call_file,
    execute,
    fingerprint,
    json_of,
    societies,
    write_csv,
)

from lifecycle.core import clock

ME = getpass.getuser()
PASSWORD = "correct horse battery"


def run(db: str, *args: Any, as_: str | None = None, now: str | None = None,
        env: dict[str, str] | None = None, input: str | None = None) -> Any:
    """`starfund ARGS` in-process with only the options given (no --as unless `as_`)."""
    from cli import main

    full = ["--db", db] + (["--as", as_] if as_ else []) + (["--now", now] if now else [])
    result = CliRunner().invoke(main, full + [str(a) for a in args], env=env, input=input,
                                catch_exceptions=False)
    clock.set_now(None)
    assert "Traceback" not in result.output
    return result


def refused_here(db: str, *args: Any, says: str, **kw: Any) -> str:
    """The command exits 1 naming `says`, and the database is exactly as it was."""
    before = fingerprint(db)
    r = run(db, *args, **kw)
    assert r.exit_code == 1, r.output
    assert says in r.output, r.output
    assert fingerprint(db) == before, f"refused `{' '.join(map(str, args))}` changed the database"
    return r.output


@pytest.fixture(autouse=True)
def _no_default_actor(monkeypatch):
    """Here who acts comes from the OS user or a login, not conftest's STARFUND_ACTOR."""
    monkeypatch.delenv("STARFUND_ACTOR", raising=False)


@pytest.fixture
def live(db_url: str) -> Cli:
    """A live database founded by the OS user's account (officer + approver)."""
    r = run(db_url, "init", "--account", ME)
    assert r.exit_code == 0 and "(live, id" in r.output, r.output
    return Cli(db_url, actor=ME)


def around_now(tmp_path: Path) -> Path:
    """The example call with its declaration window open now (a live database's now)."""
    today = clock.wall().replace(hour=9, minute=0, second=0)
    closes = today + timedelta(days=20)
    return call_file(tmp_path, {"calendar": {
        "declaration_opens": today - timedelta(days=5), "declaration_closes": closes,
        "review_due": closes + timedelta(days=20), "assessment_due": closes + timedelta(days=200),
        "holidays": []}})


# --- time ---------------------------------------------------------------------------------

def test_simulated_time_is_refused_on_every_command(live, tmp_path):
    run(live.db, "user", "password", ME, "--password-stdin", input=PASSWORD + "\n")
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    anchors = tmp_path / "anchors"
    commands = [
        ("whoami",), ("user", "list"), ("user", "add", "clerk", "--role", "officer"),
        ("user", "password", ME, "--password-stdin"), ("login", ME, "--password-stdin"),
        ("society", "import", soc), ("call", "create", EXAMPLE_CALL), ("status", CALL),
        ("advance", CALL, "submit"), ("audit", "query"), ("audit", "verify"),
        ("audit", "anchor", "--dir", anchors), ("deadlines", "run-due"), ("notify", "send"),
    ]
    before = fingerprint(live.db)  # once around the loop: a write by any command would stay
    for args in commands:
        stdin = PASSWORD + "\n" if "--password-stdin" in args else None
        for how in ({"now": "2025-03-10"}, {"env": {"STARFUND_NOW": "2025-03-10"}}):
            r = run(live.db, *args, input=stdin, **how)
            assert r.exit_code == 1, (args, how, r.output)
            assert "this database is live" in r.output and "refused" in r.output, r.output
    assert fingerprint(live.db) == before, "a command refused for --now changed the database"
    assert not anchors.exists() or not any(anchors.iterdir())


@pytest.mark.parametrize("command", ["init", "logout"])
def test_init_and_logout_refuse_simulated_time_too(live, command):
    refused_here(live.db, command, now="2025-03-10", says="live")


def test_init_with_now_on_a_new_database_writes_nothing(new_db, _own_config_dir):
    db = new_db("fresh")
    r = run(db, "init", "--account", ME, now="2025-03-10")
    assert r.exit_code == 1 and "live" in r.output, r.output
    keys = _own_config_dir / "keys"
    assert not keys.exists() or not any(keys.iterdir()), sorted(p.name for p in keys.iterdir())
    assert not any(fingerprint(db).values()), "a refused init left rows behind"


def test_a_failed_founding_leaves_no_key_files(new_db, _own_config_dir):
    """The keys are written inside init's transaction; when it fails (here: a first account
    named like the system identity) the key files go with it."""
    db = new_db("fresh")
    r = run(db, "init", "--account", "scheduler")
    assert r.exit_code == 1 and "system's own identity" in r.output, r.output
    keys = _own_config_dir / "keys"
    assert not keys.exists() or not any(keys.iterdir()), sorted(p.name for p in keys.iterdir())
    assert run(db, "init", "--account", ME).exit_code == 0  # and a second try founds it


def test_events_carry_the_real_time_they_were_written(live):
    before = clock.wall()
    live("user", "add", "clerk", "--role", "officer")
    after = clock.wall()
    (event,) = audit_rows(live.db, action="account_add")
    assert event.by is None and event.actor == ME
    assert before <= event.written_at <= after
    assert before <= event.at <= after, "a live act is dated at the clock's time"
    assert all(r.written_at is not None for r in audit_rows(live.db))


def test_a_simulation_shows_when_an_event_was_written(cli):
    cli("user", "add", "clerk", "--role", "officer", now="2025-03-10T10:00")
    event = audit_rows(cli.db, action="account_add")[-1]  # clerk's
    assert event.at.isoformat(sep=" ") == "2025-03-10 10:00:00"
    assert event.written_at != event.at
    out = cli("audit", "query", "--trigger", "account_add").output
    row = next(line for line in out.splitlines() if "2025-03-10 10:00:00" in line)
    assert event.written_at.isoformat(sep=" ") in row, out
    (init,) = audit_rows(cli.db, action="database_init")
    out = cli("audit", "query", "--trigger", "database_init").output
    row = next(line for line in out.splitlines() if "database_init" in line)
    shown = 1 if init.at == init.written_at else 2  # init ran at the clock's time: blank
    assert row.count(init.written_at.isoformat(sep=" ")) == shown, out


def test_a_live_database_never_becomes_a_simulation(live):
    """`init --simulation` is refused on it, and relabelling it behind starfund's back is found."""
    refused_here(live.db, "init", "--simulation", says="live database cannot become a "
                                                        "simulation")
    assert json_of(live("whoami", "--json"))["database"] == "live"
    live("user", "add", "clerk", "--role", "officer")
    assert live("audit", "verify").exit_code == 0
    execute(live.db, "UPDATE meta SET value = 'simulation' WHERE key = 'mode'")
    # the relabelled database now takes --now: exactly what a cheat would want
    assert live("whoami", now="2020-01-01").exit_code == 0
    r = live("audit", "verify", "--json", ok=False)
    assert r.exit_code == 1
    report = json.loads(r.output)
    (problem,) = [p for p in report["problems"] if p["check"] == "mode"]
    assert "mode is 'simulation' but event 1 recorded 'live'" in problem["message"]
    assert live("audit", "verify", ok=False).exit_code == 1



def test_a_relabelled_live_database_still_refuses_a_simulated_time(live):
    """Issue 29, case 4: the mode row flipped to 'simulation' behind starfund's back; an act
    with --now is still refused (the trail says live), and nothing is written."""
    live("user", "add", "clerk", "--role", "officer")
    execute(live.db, "UPDATE meta SET value = 'simulation' WHERE key = 'mode'")
    refused_here(live.db, "user", "add", "clerk-2", "--role", "officer", as_=ME,
                 now="2020-01-01", says="this database is live")


def test_a_back_dated_live_event_fails_verify(live):
    """A key holder back-dates a live event and recomputes the chain with the real key: the
    event's time is not when it was written, and the trail says the database is live."""
    from test_tamper import hmac_with, rechain, tamper

    from lifecycle.core import keys
    from lifecycle.core.models import AuditEvent

    live("user", "add", "clerk", "--role", "officer")
    events = AuditEvent.__table__
    (added,) = audit_rows(live.db, action="account_add")
    database = json.loads(audit_rows(live.db, action="database_init")[0].payload)["database_id"]
    secret = keys.load_chain_key(database).secret

    def back_date(conn):
        from sqlalchemy import update

        conn.execute(update(events).where(events.c.seq == added.seq)
                     .values(at=added.at.replace(year=2020)))
        rechain(conn, hmac_with(secret), secret, start=added.seq)

    tamper(live.db, back_date)
    r = live("audit", "verify", "--json", ok=False)
    assert r.exit_code == 1, r.output
    found = {p["check"]: p for p in json.loads(r.output)["problems"]}
    assert set(found) == {"time"}, found
    assert found["time"]["first"] == [str(added.seq)]
    out = live("audit", "verify", ok=False).output
    assert "1 event(s) of a live database carry a time that is not when they were written" in out
    assert f"event {added.seq} at 2020-" in out


# --- identity ------------------------------------------------------------------------------

def test_an_unknown_account_is_refused(live, new_db):
    refused_here(live.db, "whoami", as_="nobody-here", says="no account 'nobody-here'")
    refused_here(live.db, "user", "add", "x", "--role", "finance", as_="nobody-here",
                 says="no account 'nobody-here'")
    # whoever ran `init` acts as its first account at once (logged in as it); once logged
    # out, the OS user has no account there: refused with or without --as
    other = new_db("other")
    assert run(other, "init", "--account", "someone-else").exit_code == 0
    assert run(other, "whoami").output.startswith("someone-else: approver, officer")
    assert run(other, "logout").exit_code == 0
    out = refused_here(other, "whoami", says=f"the OS user {ME!r} has no account")
    assert "starfund login" in out
    refused_here(other, "user", "list", as_="someone-else",
                 says=f"the OS user {ME!r} has no account")


def test_a_disabled_account_is_refused(live):
    run(live.db, "user", "add", "boss", "--role", "approver", "--password-stdin",
        input=PASSWORD + "\n")
    assert run(live.db, "login", "boss", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    r = run(live.db, "user", "disable", ME)
    assert r.exit_code == 0, r.output
    assert run(live.db, "logout").exit_code == 0
    refused_here(live.db, "whoami", says=f"the account {ME!r} was disabled")
    refused_here(live.db, "user", "list", says=f"the account {ME!r} was disabled")
    (event,) = audit_rows(live.db, action="account_disable")
    assert event.actor == "boss"


def test_a_disabled_accounts_login_ends(cli):
    cli("user", "add", "clerk", "--role", "officer")
    run(cli.db, "user", "password", "clerk", "--password-stdin", as_="clerk",
        input=PASSWORD + "\n")
    assert run(cli.db, "login", "clerk", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    assert json_of(run(cli.db, "whoami", "--json"))["account"] == "clerk"
    cli("user", "disable", "clerk")  # --as the approver: a simulation allows it
    refused_here(cli.db, "whoami", says="your login is not known to this database")
    refused_here(cli.db, "login", "clerk", "--password-stdin", input=PASSWORD + "\n",
                 says="wrong account name or password")
    assert "logged out" in run(cli.db, "logout").output
    refused_here(cli.db, "whoami", as_="clerk", says="'clerk' was disabled")


def test_login_acts_as_the_account_until_logout(live, tmp_path, _own_config_dir):
    run(live.db, "user", "add", "clerk", "--role", "officer", "--password-stdin",
        input=PASSWORD + "\n")
    refused_here(live.db, "login", "clerk", "--password-stdin", input="not the password\n",
                 says="wrong account name or password")
    r = run(live.db, "login", "clerk", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0 and "logged in as clerk" in r.output, r.output
    logins = _own_config_dir / "logins.json"
    assert stat.S_IMODE(os.stat(logins).st_mode) == 0o600
    me = json_of(run(live.db, "whoami", "--json"))
    assert (me["account"], me["roles"], me["how"]) == ("clerk", ["officer"],
                                                        "logged in as clerk")
    assert run(live.db, "society", "import", write_csv(tmp_path / "soc.csv", societies(1)),
               ).exit_code == 0
    assert audit_rows(live.db)[-1].actor == "clerk"
    r = run(live.db, "logout")
    assert r.exit_code == 0 and "logged out" in r.output
    me = json_of(run(live.db, "whoami", "--json"))
    assert (me["account"], me["how"]) == (ME, f"the OS user {ME}")
    assert json.loads(logins.read_text()) == {}
    assert "not logged in" in run(live.db, "logout").output


def test_only_an_officer_acts_for_a_society_and_both_are_recorded(live, tmp_path):
    live("society", "import", write_csv(tmp_path / "soc.csv", societies(2)))
    live("call", "create", around_now(tmp_path))
    live("application", "import", CALL, write_csv(tmp_path / "apps.csv", [
        {"id": "A0001", "society_id": "S001", "category": "academic", "title": "项目 1",
         "requested_amount": 20000, "summary": "摘要"}]))
    live("user", "add", "s1-contact", "--role", "society", "--society", "S001")
    run(live.db, "user", "add", "coord", "--role", "coordinator", "--password-stdin",
        input=PASSWORD + "\n")
    me = json_of(live("whoami", "--json", actor="s1-contact"))
    assert (me["account"], me["by"], me["society"]) == ("s1-contact", ME, "S001")
    live("advance", CALL, "submit", actor="s1-contact")
    (event,) = audit_rows(live.db, action="submit")
    assert (event.actor, event.by, event.application_id) == ("s1-contact", ME, "A0001")
    # an officer may not act as staff: --as is only for a society's or expert's account
    refused_here(live.db, "whoami", as_="coord", says=f"{ME} may not act as coord")
    # a coordinator may not act as anyone
    assert run(live.db, "login", "coord", "--password-stdin",
               input=PASSWORD + "\n").exit_code == 0
    for target in ("s1-contact", ME):
        refused_here(live.db, "advance", CALL, "withdraw", as_=target,
                     says=f"coord may not act as {target} on a live database")
    # nor may a society's own account use the command line of a live database
    run(live.db, "logout")
    run(live.db, "user", "password", "s1-contact", "--password-stdin", input=PASSWORD + "\n")
    assert run(live.db, "login", "s1-contact", "--password-stdin",
               input=PASSWORD + "\n").exit_code == 0
    refused_here(live.db, "advance", CALL, "withdraw", says="may not use the command line (read)")
