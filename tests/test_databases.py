"""The test databases themselves (databases.py): a copy is the real thing, a reused one is new.

The suite copies Worlds (a founded database, a call with its drafts, ...) instead of
building them for every test, and reuses PostgreSQL databases; these tests hold a
copy to being what building it in place gives, ids to come included, with keys of
its own in the test's config folder.
"""
from __future__ import annotations

from pathlib import Path

from worlds import CALL, SMALL, WORKED, Cli, audit_rows, db_rows, fingerprint

WALL_CLOCK = {"written_at", "hash", "prev_hash"}
"""When an event was written (the wall clock's) and the hashes that cover it."""


def _worked_in_place(db: str) -> None:
    """What the WORKED world adds to SMALL, done here."""
    cli = Cli(db)
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")


def _comparable(db: str) -> tuple[dict, list[tuple]]:
    """Every row, the audit events without what the wall clock decides; the chain verified."""
    assert "audit chain intact" in Cli(db)("audit", "verify").output
    rows = fingerprint(db)
    rows.pop("audit_events")
    rows.pop("audit_head")
    events = [tuple(v for k, v in r._asdict().items() if k not in WALL_CLOCK)
              for r in audit_rows(db)]
    return rows, events


def _next_moves(db: str) -> tuple[dict, list[tuple]]:
    """The same work done on a database, then all of it: the ids of the messages it
    queues show where the sequences stood."""
    cli = Cli(db)
    before = len(fingerprint(db)["notifications"])
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    after = _comparable(db)
    assert before and len(after[0]["notifications"]) > before, "new ids were taken"
    return after


def _keys_here(db: str, config: Path) -> list[str]:
    named = [v for (v,) in db_rows(db, "SELECT value FROM meta WHERE key LIKE '%key_path'")]
    assert len(named) == 2 and all(Path(v).parent == config / "keys" for v in named), named
    return named


def test_a_copied_world_is_the_world_built_in_place(new_db, _own_config_dir):
    built = new_db("built", world=SMALL)
    _worked_in_place(built)
    copied = new_db("copied", world=WORKED)
    assert _comparable(copied) == _comparable(built)
    assert _keys_here(copied, _own_config_dir) == _keys_here(built, _own_config_dir)
    assert _next_moves(copied) == _next_moves(built)


def test_a_reused_postgres_database_is_new_again(databases, _own_config_dir):
    """A pooled database, filled and given back, comes back equal to a new one."""
    pool = databases.pool
    url, give_back = databases.postgres(WORKED)
    _next_moves(url)
    give_back()
    again, give_back_again = pool.take()
    fresh, give_back_fresh = pool.take(fresh=True)
    try:
        assert again == url, "the database given back is the one reused"
        assert fingerprint(again) == fingerprint(fresh)
        assert not any(fingerprint(again).values())
        worked = pool.worlds[WORKED.name]
        pool.fill(again, worked)
        pool.fill(fresh, worked)
        assert _keys_here(again, _own_config_dir) == _keys_here(fresh, _own_config_dir)
        assert _next_moves(again) == _next_moves(fresh)
    finally:
        give_back_again()
        give_back_fresh()
