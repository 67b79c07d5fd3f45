"""A database whose schema is not this release's stops every command with one line naming both
revisions and what to do, under its own exit code, never a traceback; `init` upgrades an
older one made by the migrations themselves, and the trail verifies after. (A database with
data from the previous release: tests/test_upgrade.py, which also checks the message.)"""
from __future__ import annotations

from alembic import command
from worlds import AUDITOR, Cli, execute, founded

from lifecycle.core import db
from lifecycle.core.errors import SchemaMismatch

OLDER = "0012_audit_moves"


def _at(url: str, revision: str) -> None:
    """The schema as the migrations leave it at `revision` (the release that ended there)."""
    e = db.make_engine(url)
    cfg = db.alembic_config(e)
    with e.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    e.dispose()


def test_the_heads_read_from_the_files_are_alembics():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config(db.make_engine("sqlite://")))
    assert db.heads() == tuple(sorted(script.get_heads()))
    assert set(db.revisions()) == {s.revision for s in script.walk_revisions()}


def test_every_command_on_an_older_database_says_run_init_then_init_upgrades_it(db_url):
    _at(db_url, OLDER)
    cli = Cli(db_url)
    for args in (("status", "2025-project"), ("audit", "verify"), ("user", "list"),
                 ("whoami",), ("serve",), ("scheduler", "run"), ("logout",)):
        r = cli(*args, ok=False)
        assert r.exit_code == SchemaMismatch.exit_code == 4, (args, r.output)
        assert r.output.strip() == (f"error: database at revision {OLDER}, this starfund needs "
                                    f"{db.heads()[0]}: run `starfund init` to upgrade (back it "
                                    "up first: `starfund backup`)"), (args, r.output)
    founded(cli)
    assert cli("user", "list").exit_code == 0
    assert "intact" in cli("audit", "verify", actor=AUDITOR).output


def test_a_database_of_a_later_release_is_refused_naming_the_revision(founded_db_url):
    execute(founded_db_url, "UPDATE alembic_version SET version_num = '0099_later'")
    r = Cli(founded_db_url)("status", "2025-project", ok=False)
    assert r.exit_code == 4
    assert "database at revision 0099_later, this starfund needs" in r.output
    assert "newer than this release knows" in r.output and "Traceback" not in r.output
