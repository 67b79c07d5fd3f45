"""The test databases themselves (databases.py): a copy is the real thing, a reused one is new.

The suite copies initialised databases and Worlds instead of building them for
every test, and reuses PostgreSQL databases; these tests hold that to being
exactly what building them in place would give, ids to come included.
"""
from __future__ import annotations

from worlds import CALL, WORKED, Cli, fingerprint, small_world


def _built_in_place(db: str, tmp_path) -> None:
    cli = small_world(Cli(db), tmp_path)
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")


def _next_moves(db: str) -> dict:
    """The same work done on a database, then all of it: the ids of the messages it
    queues show where the sequences stood."""
    cli = Cli(db)
    before = len(fingerprint(db)["notifications"])
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    after = fingerprint(db)
    assert before and len(after["notifications"]) > before, "new ids were taken"
    return after


def test_a_copied_world_is_the_world_built_in_place(new_db, tmp_path):
    built = new_db("built", init=True)
    _built_in_place(built, tmp_path)
    copied = new_db("copied", world=WORKED)
    assert fingerprint(copied) == fingerprint(built)
    assert _next_moves(copied) == _next_moves(built)


def test_a_reused_postgres_database_is_new_again(databases, tmp_path):
    """A pooled database, filled and given back, comes back equal to a new initialised one."""
    pool = databases.pool
    databases.postgres(init=True)[1]()               # the pool has a database to reuse
    url, give_back = pool.take()
    _built_in_place(url, tmp_path)
    give_back()
    again, give_back_again = pool.take()
    fresh, give_back_fresh = pool.take()
    try:
        assert again == url, "the database given back is the one reused"
        assert fingerprint(again) == fingerprint(fresh)
        assert not any(fingerprint(again).values())
        _built_in_place(again, tmp_path)
        _built_in_place(fresh, tmp_path)
        assert _next_moves(again) == _next_moves(fresh)
    finally:
        give_back_again()
        give_back_fresh()
