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
