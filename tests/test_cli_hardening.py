"""The command line's door (issue 9): options beat the environment, the demo touches only its own
databases, a user's mistake is one line (never a traceback), names are clean, filters are checked.
"""
from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from worlds import (
    EXAMPLE_CALL,
    Cli,
    call_file,
    fingerprint,
    founded,
    societies,
    write_csv,
)

from cli import main
from lifecycle.core import clock

# Every environment variable the CLI reads, unset unless a test sets it.
CLEAN_ENV = {k: None for k in ("STARFUND_DB", "STARFUND_ACTOR", "STARFUND_NOW", "STARFUND_CHANNEL",
                               "STARFUND_OUTBOX", "STARFUND_SMTP_HOST", "STARFUND_SMTP_PORT",
                               "STARFUND_SMTP_STARTTLS", "STARFUND_SMTP_USER",
                               "STARFUND_TEMPLATES", "STARFUND_SMTP_PASSWORD")}


def run(*args, env: dict | None = None):
    """starfund ARGS in-process with exactly `env` on top of a clean environment."""
    result = CliRunner().invoke(main, [str(a) for a in args], env={**CLEAN_ENV, **(env or {})},
                                catch_exceptions=True)
    clock.set_now(None)
    return result


def no_traceback(r) -> None:
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)


@pytest.fixture
def three_dbs(new_db, tmp_path):
    """Three initialised databases of the backend under test, each with one call named after it."""
    urls = [new_db(name, founded=True) for name in "abc"]
    for url, name in zip(urls, ("call-a", "call-b", "call-c")):
        Cli(url)("call", "create", call_file(tmp_path, call_id=name), now="2025-02-01")
    return dict(zip("abc", urls))


# --- 1. an option given anywhere beats the environment, which beats the default -------------

WHERE = [(before, after, env) for before in (False, True) for after in (False, True)
         for env in (False, True)]


def _args(before_value, after_value, before, after, option, *command):
    head = [option, before_value] if before else []
    tail = [option, after_value] if after else []
    return [*head, *command, *tail]


def test_db_option_beats_environment(three_dbs, tmp_path, monkeypatch):
    """--db before the command (b), after it (c), STARFUND_DB (a), default ./starfund.db (none)."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the default ./starfund.db does not exist here
    for before, after, env in WHERE:
        r = run(*_args(three_dbs["b"], three_dbs["c"], before, after, "--db", "call", "list",
                       "--json"), env={"STARFUND_DB": three_dbs["a"]} if env else {})
        no_traceback(r)
        expected = "call-c" if after else "call-b" if before else "call-a" if env else None
        case = f"before={before} after={after} env={env}: {r.output}"
        if expected is None:
            assert r.exit_code == 1 and "no starfund database" in r.output, case
        else:
            assert r.exit_code == 0, case
            assert [c["id"] for c in json.loads(r.output)] == [expected], case


def _last_actor(db: str) -> str:
    r = run("--db", db, "audit", "query", "--trigger", "society_import", "--newest-first",
            "--limit", "1", "--json")
    return json.loads(r.output)[0]["actor"]


def test_as_option_beats_environment(cli, tmp_path):
    """The audit trail names who was named on the command line, whatever STARFUND_ACTOR says."""
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    for name in ("alice", "bob", "env-actor"):
        cli("user", "add", name, "--role", "officer")
    for before, after, env in WHERE:
        r = run(*_args("alice", "bob", before, after, "--as", "--db", cli.db, "society", "import",
                       soc), env={"STARFUND_ACTOR": "env-actor"} if env else {})
        assert r.exit_code == 0, r.output
        expected = ("bob" if after else "alice" if before else "env-actor" if env
                    else getpass.getuser())
        assert _last_actor(cli.db) == expected, f"before={before} after={after} env={env}"


def test_now_option_beats_environment(small_call):
    for before, after, env in WHERE:
        r = run(*_args("2025-02-02T00:00", "2025-03-03T00:00", before, after, "--now", "--db",
                       small_call.db, "status", "2025-project", "--json"),
                env={"STARFUND_NOW": "2025-01-01T00:00"} if env else {})
        assert r.exit_code == 0, r.output
        now = json.loads(r.output)["now"][:10]
        expected = ("2025-03-03" if after else "2025-02-02" if before else
                    "2025-01-01" if env else None)
        if expected:
            assert now == expected, f"before={before} after={after} env={env}"
        else:
            assert now not in ("2025-01-01", "2025-02-02", "2025-03-03")


def test_channel_and_outbox_options_beat_environment(cli, tmp_path):
    """The channel settings only live on their commands: option > STARFUND_* > default there too."""
    env = {"STARFUND_CHANNEL": "smtp", "STARFUND_OUTBOX": str(tmp_path / "env-out")}
    r = run("--db", cli.db, "notify", "send", "--channel", "file", "--outbox",
            tmp_path / "opt-out", env=env)
    assert r.exit_code == 0, r.output
    assert "opt-out" in r.output and "env-out" not in r.output
    r = run("--db", cli.db, "notify", "send", env=env)  # the environment's smtp, without a host
    no_traceback(r)
    assert r.exit_code == 1 and "--smtp-host" in r.output


def test_templates_option_beats_environment(cli, tmp_path):
    broken = tmp_path / "broken" / "zh"
    broken.mkdir(parents=True)
    (broken / "awarded.txt").write_text("{% if %}", encoding="utf-8")
    good = tmp_path / "good"
    good.mkdir()
    env = {"STARFUND_TEMPLATES": str(tmp_path / "broken")}
    assert run("--db", cli.db, "templates", "check", env=env).exit_code == 1
    assert run("--db", cli.db, "templates", "check", "--templates", good, env=env).exit_code == 0


# --- 2. the demo never deletes or fills a database it did not make ----------------------------

def _programme(url: str, tmp_path: Path) -> Cli:
    c = Cli(url)
    founded(c)
    c("call", "create", EXAMPLE_CALL, now="2025-02-01")
    c("society", "import", write_csv(tmp_path / "soc.csv", societies(3)), now="2025-02-01")
    return c


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}


@pytest.mark.parametrize("how", ["option", "environment"])
def test_demo_refuses_a_programme_sqlite_file(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    prog = tmp_path / "programme.db"
    _programme(str(prog), tmp_path)
    before, files = fingerprint(str(prog)), _files(prog)
    r = (run("demo", "--db", prog) if how == "option"
         else run("demo", env={"STARFUND_DB": str(prog)}))
    no_traceback(r)
    assert r.exit_code == 1
    assert "not a starfund demo database" in r.output and "nothing was changed" in r.output
    assert _files(prog) == files  # not a byte changed, no -wal/-shm left behind
    assert fingerprint(str(prog)) == before
    assert not list(tmp_path.glob("outbox/*"))


def test_demo_refuses_a_file_that_is_not_sqlite(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n", encoding="utf-8")
    r = run("demo", "--db", notes)
    no_traceback(r)
    assert r.exit_code == 1 and "not a starfund demo database" in r.output
    assert _files(notes) == {"notes.db": b"my notes, not a database\n"}


def test_demo_refuses_a_postgres_programme_database(pg_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _programme(pg_url, tmp_path)
    before = fingerprint(pg_url)
    r = run("demo", "--db", pg_url, "--societies", "20")
    no_traceback(r)
    assert r.exit_code == 1 and "no demo marker" in r.output
    assert fingerprint(pg_url) == before


def test_demo_refuses_an_initialised_postgres_database(founded_pg_url, tmp_path, monkeypatch):
    """No data yet, but made by `starfund init`, not by the demo: still not the demo's to fill."""
    pg_url = founded_pg_url
    monkeypatch.chdir(tmp_path)
    before = fingerprint(pg_url)
    r = run("demo", "--db", pg_url, "--societies", "20")
    assert r.exit_code == 1 and "no demo marker" in r.output
    assert fingerprint(pg_url) == before


def test_demo_owns_its_default_file_and_starts_it_over(tmp_path, monkeypatch):
    """Default target starfund-demo.db; run again it starts over; --keep will not run it twice."""
    monkeypatch.chdir(tmp_path)
    r = run("demo", "--societies", "20")
    assert r.exit_code == 0, r.output
    assert "on starfund-demo.db" in r.output
    r = run("demo", "--societies", "20")  # a marked demo database: started over, not refused
    assert r.exit_code == 0, r.output
    before = fingerprint("starfund-demo.db")
    r = run("demo", "--societies", "20", "--keep")
    assert r.exit_code == 1 and "already holds a simulation" in r.output
    assert fingerprint("starfund-demo.db") == before


# --- 12. a user's mistake is one line, never a traceback --------------------------------------

BAD_TIMES = ["garbage", "2026-05-00T10:00", "2025-13-01", "2025-02-30", "", "2025-04-07T25:00"]


def test_bad_now_is_a_usage_error_naming_the_accepted_form(cli, tmp_path):
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    before = fingerprint(cli.db)
    for value in BAD_TIMES:
        for where in ("before", "after", "environment"):
            if where == "environment" and not value:
                continue  # an empty STARFUND_NOW means unset
            args = {"before": ["--now", value, "--db", cli.db, "society", "import", soc],
                    "after": ["--db", cli.db, "society", "import", soc, "--now", value],
                    "environment": ["--db", cli.db, "society", "import", soc]}[where]
            r = run(*args, env={"STARFUND_NOW": value} if where == "environment" else {})
            no_traceback(r)
            assert r.exit_code == 2, (value, where, r.output)
            assert "accepted: an ISO 8601 date" in r.output
            assert ("STARFUND_NOW" if where == "environment" else "--now") in r.output
    assert fingerprint(cli.db) == before


def test_bad_audit_time_is_a_usage_error(cli):
    for option in ("--since", "--until"):
        r = run("--db", cli.db, "audit", "query", option, "2025-05-00")
        no_traceback(r)
        assert r.exit_code == 2 and "accepted: an ISO 8601 date" in r.output


OUT_OF_RANGE = [["audit", "query", "--limit", "-5"],
                                  ["audit", "query", "--page", "0"],
                                  ["audit", "query", "--limit", "10", "--page", str(10**13)],
                                  ["notify", "list", "--limit", "-1"],
                                  ["notify", "retry", "--id", str(2**40)],
                                  ["objection", "resolve", "--dismiss", "--reason", "x", "--", "-3"],
                                  ["objection", "resolve", "--dismiss", "--reason", "x", "0"]]


def test_out_of_range_numbers_are_usage_errors(cli):
    for args in OUT_OF_RANGE:
        r = run("--db", cli.db, *args)
        no_traceback(r)
        assert r.exit_code == 2 and "is not in the range" in r.output, (args, r.output)


def test_preview_of_a_message_the_application_cannot_get_yet(small_call):
    """report_requested names the checkpoint's deadline; a draft has no checkpoint."""
    r = run("--db", small_call.db, "templates", "preview", "report_requested",
            "--application", "A0001")
    no_traceback(r)
    assert r.exit_code == 1
    assert "A0001 has no checkpoint" in r.output and len(r.output.strip().splitlines()) == 1


def test_bad_database_is_one_line(tmp_path):
    for db, command, what in (
            (tmp_path / "no" / "such" / "dir.db", "init", "cannot open the database"),
            (tmp_path / "no" / "such" / "dir.db", "call", "no starfund database"),
            ("nosuchdialect://x/y", "call", "neither a SQLite file nor a database URL"),
            ("postgresql://nobody@127.0.0.1:1/x", "call", "cannot open the database"),
            (tmp_path / "missing.db", "call", "no starfund database")):
        r = run("--db", db, *([command] if command == "init" else [command, "list"]))
        no_traceback(r)
        assert r.exit_code == 1 and what in r.output, r.output
    assert not (tmp_path / "missing.db").exists()  # asking did not leave an empty file behind
    notes = tmp_path / "notes.db"
    notes.write_text("not a database, long enough to have a header" * 10, encoding="utf-8")
    r = run("--db", notes, "call", "list")
    no_traceback(r)
    assert r.exit_code == 1 and "cannot open the database" in r.output


def test_unwritable_output_is_refused_at_the_door(small_call, tmp_path):
    """A file or folder starfund would write is checked before any work: nothing changes."""
    before = fingerprint(small_call.db)
    missing = tmp_path / "no" / "such"
    for args, what in ((["rank", "2025-project", "--xlsx", missing / "r.xlsx"], "does not exist"),
                       (["rank", "2025-project", "--xlsx", tmp_path], "is a directory"),
                       (["notice", "publish", "2025-project", "--html", missing / "n.html"],
                        "does not exist"),
                       (["review", "sheet", "2025-project", "E001", "--out", missing / "s.xlsx"],
                        "does not exist"),
                       (["notify", "send", "--outbox", small_call.db if "://" not in small_call.db
                         else EXAMPLE_CALL], "is a file")):
        r = run("--db", small_call.db, *args)
        no_traceback(r)
        assert r.exit_code == 2 and what in r.output, (args, r.output)
    assert fingerprint(small_call.db) == before
    r = run("--db", small_call.db, "notify", "send", "--outbox", tmp_path / "new" / "folder")
    assert r.exit_code == 0 and (tmp_path / "new" / "folder").is_dir()  # made with its parents


def test_bad_time_zone_is_a_usage_error(small_call):
    r = run("--db", small_call.db, "status", "2025-project", env={"STARFUND_TZ": "Mars/Olympus"})
    no_traceback(r)
    assert r.exit_code == 2 and "STARFUND_TZ" in r.output and "accepted: an IANA name" in r.output


def test_only_typed_user_errors_are_caught():
    """A ValueError or LookupError out of starfund is a bug: the CLI must not hide its traceback."""
    from lifecycle.console import EXPECTED_ERRORS

    assert not issubclass(ValueError, EXPECTED_ERRORS)
    assert not issubclass(LookupError, EXPECTED_ERRORS)
    assert not issubclass(KeyError, EXPECTED_ERRORS)


# --- 13. names are clean ----------------------------------------------------------------------

BAD_NAMES = [("al\nice", "\\x0a"), ("\x1b[31mred", "\\x1b"), ("ev\u202eil", "\\u202e"),
             ("tab\there", "\\x09"), ("del\x7f", "\\x7f"), ("c1\x9b2J", "\\x9b")]


def test_actor_with_control_characters_is_refused(cli, tmp_path):
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    before = fingerprint(cli.db)
    for name, shown in BAD_NAMES:
        for where in ("before", "after", "environment"):
            if where == "before":
                r = run("--as", name, "--db", cli.db, "society", "import", soc)
            elif where == "after":
                r = run("--db", cli.db, "society", "import", soc, "--as", name)
            else:
                r = run("--db", cli.db, "society", "import", soc, env={"STARFUND_ACTOR": name})
            no_traceback(r)
            assert r.exit_code == 2, (name, where, r.output)
            assert "control character" in r.output and shown in r.output
            assert ("STARFUND_ACTOR" if where == "environment" else "--as") in r.output
            assert "\x1b" not in r.output and "\u202e" not in r.output
    assert fingerprint(cli.db) == before


def test_overlong_actor_is_refused_naming_the_limit(cli, tmp_path):
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    before = fingerprint(cli.db)
    r = run("--db", cli.db, "--as", "a" * 101, "society", "import", soc)
    assert r.exit_code == 2 and "the limit is 100" in r.output
    assert fingerprint(cli.db) == before


BAD_TEXT = [
    ["objection", "file", "A0001", "--by", "王\x1b[2J明", "--contact", "1", "--reason", "x"],
    ["objection", "file", "A0001", "--by", "王明", "--contact", "1", "--reason", "x\ny"],
    ["review", "panel", "A0001", "--score", "80", "--reason", "\x1b]0;pwned\x07"],
    ["advance", "2025-project\x1b[A", "submit"],
    ["show", "A0001\x00"],
    ["objection", "file", "A0001", "--by", "x" * 201, "--contact", "1", "--reason", "x"],
]


def test_text_options_with_control_characters_or_overlong_are_refused(small_call):
    before = fingerprint(small_call.db)
    for args in BAD_TEXT:
        r = run("--db", small_call.db, *args)
        no_traceback(r)
        assert r.exit_code == 2, (args, r.output)
        assert "control character" in r.output or "the limit is 200" in r.output
        assert "\x1b" not in r.output and "\x00" not in r.output
    assert fingerprint(small_call.db) == before


def _poison(db: str) -> None:
    """Data written by someone else (an older version, a SQL console) with terminal escapes."""
    from sqlalchemy import text

    from lifecycle.core.db import make_engine

    e = make_engine(db)
    with e.begin() as conn:
        conn.execute(text("UPDATE societies SET name = :n WHERE id = 'S001'"),
                     {"n": "Evil\x1b[2J\x1b]0;pwned\x07 [red]Soc[/red]\u202e"})
        conn.execute(text("UPDATE applications SET title = :t WHERE id = 'A0001'"),
                     {"t": "T\x1b[31mitle\r\nforged line"})
        conn.execute(text("UPDATE calls SET title = :t"), {"t": "Call\x9b2J [bold]x[/bold]"})
    e.dispose()


def test_output_escapes_control_characters_from_the_database(small_call):
    _poison(small_call.db)
    for args in (["society", "show", "S001"], ["show", "A0001"], ["call", "list"],
                 ["society", "show", "S001", "--json"], ["call", "list", "--json"],
                 ["show", "A0001", "--json"]):
        r = run("--db", small_call.db, *args)
        assert r.exit_code == 0, r.output
        for raw in ("\x1b", "\x07", "\u202e", "\x9b", "\r"):
            assert raw not in r.output, (args, raw, r.output)
        if "--json" not in args:
            assert "\\x1b" in r.output or "\\x9b" in r.output, (args, r.output)
        if args[0] == "call" and "--json" not in args:
            assert "[bold]x[/bold]" in r.output  # shown as written, not taken as markup


def test_clean_name_for_importers():
    """The checker the importers share (lifecycle.core.names): typed error naming field and limit."""
    from lifecycle.core.errors import UserError
    from lifecycle.core.names import clean_name, printable

    assert clean_name("  市测试学会 ", "society name") == "市测试学会"
    for bad, part in (("a\nb", "\\x0a"), ("", "empty"), ("x" * 11, "the limit is 10")):
        with pytest.raises(UserError, match="society name") as e:
            clean_name(bad, "society name", limit=10, where="soc.csv row 3")
        assert part in str(e.value) and str(e.value).startswith("soc.csv row 3: ")
    assert printable("a\x1b[0mb\nc") == "a\\x1b[0mb\\x0ac"
    assert printable("a\x1b\nc", multiline=True) == "a\\x1b\nc"


# --- 14. optional filters say so, and an unknown one is an error --------------------------------

@pytest.mark.parametrize("command", [["stars"], ["deadlines", "list"], ["objection", "list"]])
def test_optional_call_filter_shows_in_usage(command):
    r = run(*command, "--help")
    assert r.exit_code == 0
    assert f"Usage: main {' '.join(command)} [OPTIONS] [CALL]" in r.output or \
        f"{' '.join(command)} [OPTIONS] [CALL]" in r.output


UNKNOWN = [
    (["stars", "nope"], "no call 'nope'"),
    (["deadlines", "list", "nope"], "no call 'nope'"),
    (["objection", "list", "nope"], "no call 'nope'"),
    (["audit", "query", "--call", "nope"], "no call 'nope'"),
    (["audit", "query", "--application", "nope"], "no application 'nope'"),
    (["audit", "query", "--call", "nope", "--csv"], "no call 'nope'"),
    (["notify", "list", "--call", "nope"], "no call 'nope'"),
    (["notify", "list", "--application", "nope"], "no application 'nope'"),
    (["deadlines", "list", ""], "no call ''"),
]


def test_unknown_filter_is_an_error_not_an_empty_table(small_call):
    for args, what in UNKNOWN:
        r = run("--db", small_call.db, *args)
        no_traceback(r)
        assert r.exit_code == 1 and what in r.output, (args, r.output)


def test_known_filters_still_work(small_call):
    for args in (["deadlines", "list", "2025-project"], ["objection", "list", "2025-project"],
                 ["audit", "query", "--call", "2025-project", "--application", "A0001"],
                 ["notify", "list", "--call", "2025-project"], ["deadlines", "list"],
                 ["stars"]):
        r = run("--db", small_call.db, *args)
        assert r.exit_code == 0, (args, r.output)
