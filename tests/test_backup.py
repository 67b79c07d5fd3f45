"""`starfund backup` and `starfund restore`: a snapshot taken while an advance is inside its
transaction holds nothing of it, restores into an empty database, verifies with the anchors and
shows the restore event; an older snapshot needs its loss acknowledged; bad snapshots and
non-empty targets change nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from processes import command, finish
from worlds import (
    ADMIN,
    AUDITOR,
    CALL,
    Cli,
    audit_events,
    declared_batch,
    fingerprint,
    founded,
)

N, CHUNK = 300, 100


def _paused_advance(db: str, marker: Path) -> subprocess.Popen:
    """`advance close_declaration` paused inside its transaction, a chunk written."""
    env = {**os.environ, "STARFUND_FAULT_PAUSE_AFTER_ROWS": str(CHUNK + 1),
           "STARFUND_FAULT_CHUNK_ROWS": str(CHUNK), "STARFUND_FAULT_MARKER": str(marker),
           "STARFUND_FAULT_PAUSE_SECONDS": "120"}
    proc = subprocess.Popen(command(db, "advance", CALL, "close_declaration"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the advance did not pause"
        time.sleep(0.02)
    return proc


def _same_but_the_trail_tail(restored: str, original: dict, upto: int) -> None:
    got = fingerprint(restored)
    for table, rows in original.items():
        if table in ("audit_events", "audit_head"):
            continue
        assert got[table] == rows, table
    assert set(original["audit_events"]) <= set(got["audit_events"])     # the trail as it was,
    added = set(got["audit_events"]) - set(original["audit_events"])     # then the restore
    assert len(added) == 2 and len(got["audit_events"]) == upto + 2


def _restore(cli: Cli, folder: Path, target: str, *extra, ok: bool = True):
    return cli("restore", folder, "--to", target, *extra, ok=ok)


@pytest.fixture
def target(new_db) -> str:
    """An empty database to restore into (a SQLite file not yet made, or an empty PostgreSQL
    database)."""
    return new_db("restored")


def test_backup_during_an_advance_then_restore_verifies_with_anchors(founded_db_url, tmp_path,
                                                                     target):
    db = founded_db_url
    cli = Cli(db)
    declared_batch(cli, tmp_path, N)
    anchors = tmp_path / "anchors"
    cli("audit", "anchor", "--dir", anchors, "--no-mail", actor=AUDITOR)
    before = fingerprint(db)
    events_before = len(before["audit_events"])
    proc = _paused_advance(db, tmp_path / "paused")
    try:
        r = cli("backup", "--to", tmp_path / "b1", "--anchors", anchors, "--json")
    finally:
        proc.send_signal(signal.SIGKILL)
        finish(proc, timeout=30)
    manifest = json.loads(r.output)
    assert manifest["last_event"]["seq"] == events_before      # nothing of the open batch
    assert manifest["revision"] and manifest["database"] and not manifest["keys_included"]
    assert [a["seq"] for a in manifest["anchors"]] == [events_before - 1]  # then its event
    assert not (tmp_path / "b1" / "keys").exists()

    r = _restore(cli, tmp_path / "b1", target, "--anchors", anchors)
    assert "restore recorded as event" in r.output, r.output
    _same_but_the_trail_tail(target, before, events_before)
    restored = Cli(target)
    verified = restored("audit", "verify", "--anchors", anchors, actor=AUDITOR)
    assert "anchors: 2 of 2 held" in verified.output and "intact" in verified.output
    event = audit_events(restored, trigger="restore")[0]
    assert event["payload"]["snapshot"]["seq"] == events_before
    assert event["payload"]["lost_events"] == 0 and event["actor"] == ADMIN


def test_an_older_snapshot_needs_its_loss_accepted_and_then_verifies(founded_db_url,
                                                                       tmp_path, target):
    db = founded_db_url
    cli = Cli(db)
    declared_batch(cli, tmp_path, 30)
    anchors = tmp_path / "anchors"
    cli("backup", "--to", tmp_path / "old")
    cli("advance", CALL, "close_declaration", now="2025-04-08T09:00")
    cli("audit", "anchor", "--dir", anchors, "--no-mail", actor=AUDITOR)
    head = json.loads((tmp_path / "old" / "manifest.json").read_text())["last_event"]["seq"]
    latest = max(json.loads(p.read_text())["seq"] for p in anchors.glob("anchor-*.json"))
    lost = latest - head
    assert lost >= 30                       # a move per application, at least
    refused = _restore(cli, tmp_path / "old", target, "--anchors", anchors, ok=False)
    assert refused.exit_code == 1
    assert (f"restoring it loses {lost} event(s) ({head + 1}-{latest}) recorded after the "
            f"backup. If that is what you mean, say so with --accept-loss {lost}") in \
        refused.output, refused.output
    wrong = _restore(cli, tmp_path / "old", target, "--anchors", anchors, "--accept-loss", "3",
                     ok=False)
    assert wrong.exit_code == 1 and f"--accept-loss {lost}" in wrong.output
    assert _empty(target)
    r = _restore(cli, tmp_path / "old", target, "--anchors", anchors, "--accept-loss", lost)
    assert f"losing {lost} event(s) after {head}" in r.output, r.output
    restored = Cli(target)
    verified = restored("audit", "verify", "--anchors", anchors, actor=AUDITOR, ok=False)
    assert verified.exit_code == 0, verified.output                  # not a truncation
    assert "anchors: 2 of 2 held" in verified.output
    assert f"held as lost: event {latest} was lost in the restore" in verified.output
    event = audit_events(restored, trigger="restore")[0]
    assert event["payload"]["lost_events"] == lost
    assert event["payload"]["superseded_anchors"][0][0] == latest
    # the trail the restore replaced went on differently from the snapshot: the restore's
    # new anchor tells it apart (and a trail cut back without a restore event has none)
    old = Cli(db)("audit", "verify", "--anchors", anchors, actor=AUDITOR, ok=False)
    assert old.exit_code == 1 and "no longer has the anchored hash" in old.output


def _empty(url: str) -> bool:
    from lifecycle.core import snapshots

    return snapshots.is_empty(url)[0]


def test_bad_snapshots_and_targets_change_nothing(founded_db_url, tmp_path, target, new_db):
    cli = Cli(founded_db_url)
    cli("backup", "--to", tmp_path / "b")
    data = next(p for p in (tmp_path / "b").iterdir() if p.name.startswith("starfund."))
    original = data.read_bytes()

    data.write_bytes(original[: len(original) // 2])                  # truncated
    r = _restore(cli, tmp_path / "b", target, ok=False)
    assert r.exit_code == 1 and "the snapshot is truncated or was changed" in r.output
    assert data.name in r.output and _empty(target)
    data.write_bytes(original)

    other = founded(Cli(new_db("other"))).db            # not empty; a database of its own
    r = _restore(cli, tmp_path / "b", other, ok=False)
    assert r.exit_code == 1 and "restore writes only into an empty database" in r.output

    foreign = tmp_path / "foreign-anchors"                            # another database's
    Cli(other)("audit", "anchor", "--dir", foreign, "--no-mail", actor=AUDITOR)
    r = _restore(cli, tmp_path / "b", target, "--anchors", foreign, ok=False)
    assert r.exit_code == 1 and "a snapshot of another database" in r.output
    assert _empty(target)

    r = cli("restore", tmp_path, "--to", target, ok=False)            # not a snapshot
    assert r.exit_code == 1 and "is not a starfund snapshot" in r.output

    r = cli("backup", "--to", tmp_path / "b", ok=False)                # not an empty folder
    assert r.exit_code == 1 and "the folder is not empty" in r.output

    keyed = cli("backup", "--to", tmp_path / "k", "--with-keys")
    assert "holds the audit keys" in keyed.output
    assert sorted(p.suffix for p in (tmp_path / "k" / "keys").iterdir()) == [".key", ".pem"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "k" / "keys").iterdir())
