"""Backups (`starfund backup --to DIR`) and restores (`starfund restore DIR --to URL`).

A backup is a consistent snapshot taken while the portal and the scheduler write
(`lifecycle.core.snapshots`), with a manifest, the anchors and the anchor public key; the keys
only with --with-keys, and a warning. A restore writes into an empty database only, checks the
snapshot against its manifest first, then the chain (with the operator's chain key) and every
anchor up to the snapshot's last event, records a `restore` event naming that event, and signs
a new anchor. A snapshot older than the latest anchor loses the events after it: the restore
is refused until `--accept-loss N` says how many, and the restore event then names the anchors
it supersedes, so `audit verify --anchors` tells them from a truncation.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click

from lifecycle.console import Env, OutputPath, SafePath, common, echo, emit_json, json_option
from lifecycle.core import anchors, audit, clock, db, keys, meta, snapshots
from lifecycle.core.errors import BadValue, UserError
from lifecycle.engine import anchoring, permissions

RESTORE = anchors.RESTORE


def _anchor_files(folder: Path | None) -> list[tuple[Path, dict[str, Any]]]:
    if folder is None or not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("anchor-*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            out.append((path, {"seq": int(body["seq"]), "hash": str(body["hash"]),
                               "database": str(body["database"])}))
        except (ValueError, KeyError, TypeError):
            raise BadValue(f"{path}: not a starfund anchor") from None
    return out


@click.command("backup")
@click.option("--to", "folder", required=True, type=OutputPath(folder=True), metavar="DIR",
              help="A new (or empty) folder for the snapshot.")
@click.option("--anchors", "anchors_dir", type=SafePath(file_okay=False, exists=True),
              envvar="STARFUND_ANCHORS", metavar="DIR",
              help="Take the anchors in DIR along [env STARFUND_ANCHORS].")
@click.option("--with-keys", is_flag=True,
              help="Also copy the chain key and the anchor key (whoever holds the backup can "
                   "then rewrite the trail: keep it as safe as the keys).")
@json_option
@common
def backup(env: Env, folder: str, anchors_dir: str | None, with_keys: bool) -> None:
    """Write a consistent snapshot of the database, with its manifest, while others write.

    SQLite: the online backup; PostgreSQL: pg_dump (postgresql-client) from one
    exported snapshot. A batch not committed when it starts is not in it. The
    manifest names the release, the schema revision, the database, the last
    event (number and hash), the anchors taken along and every file's SHA-256.
    The keys stay out unless --with-keys. It only reads (nothing is written to the
    trail: it would wait for the writer it must not block). Restore with `starfund restore DIR --to URL` (docs/operations.md#backups).

    \b
    Example:  starfund backup --to /srv/backups/2025-05-20 --anchors /srv/audit-anchors
    """
    env.service = True            # the service user's cron job may take it
    permissions.check(env.engine, env.actor, "backup.make")
    target = Path(folder)
    if target.exists() and any(target.iterdir()):
        raise BadValue(f"--to {target}: the folder is not empty; a backup goes into a new or "
                       "empty folder")
    made = not target.exists()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        facts = snapshots.take(env.engine, target)
        taken_at = clock.wall().isoformat(sep=" ")
        copied = []
        found = _anchor_files(Path(anchors_dir) if anchors_dir else None)
        if found:
            (target / "anchors").mkdir()
        for path, body in found:
            if body["database"] == facts["database"] and body["seq"] <= facts["last_event"]["seq"]:
                shutil.copy2(path, target / "anchors" / path.name)
                copied.append({"file": path.name, "seq": body["seq"], "hash": body["hash"]})
        with db.reading(env.engine) as conn:
            database = meta.database_id(conn)
            try:
                (target / "anchor-public-key.txt").write_text(anchors.public_key_of(conn) + "\n")
            except UserError:
                pass          # no anchor key here: the auditor has the public key
        if with_keys:
            (target / "keys").mkdir(mode=0o700)
            for source in (keys.chain_key_path(database), keys.anchor_key_path(database)):
                keys.write_private(target / "keys" / source.name,
                                   keys.read_private(source, "key"))
        manifest = snapshots.write_manifest(target, facts, taken_at, copied, with_keys)
    except BaseException:
        if made:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    digest = snapshots.sha256(target / snapshots.MANIFEST)
    if env.as_json:
        return emit_json({**manifest, "folder": str(target)})
    head = facts["last_event"]
    echo(f"backup of {facts['backend']} database {facts['database']} in {target}: up to event "
         f"{head['seq']} ({head['hash'][:16]}...), revision {facts['revision']}, "
         f"{len(copied)} anchor(s), manifest SHA-256 {digest[:16]}...")
    if with_keys:
        echo("warning: this backup holds the audit keys: whoever has it can rewrite the trail "
             "and sign anchors; keep it apart, as safe as the keys themselves", err=True)


@click.command("restore")
@click.argument("folder", type=SafePath(file_okay=False, exists=True), metavar="DIR")
@click.option("--to", "to", required=True, metavar="URL|FILE",
              help="The empty database to restore into (a new SQLite file, or an empty "
                   "PostgreSQL database).")
@click.option("--anchors", "anchors_dir", type=SafePath(file_okay=False), metavar="DIR",
              envvar="STARFUND_ANCHORS",
              help="The anchors signed since (checked, and the new anchor written there) "
                   "[env STARFUND_ANCHORS; default: audit-anchors].")
@click.option("--public-key", metavar="BASE64",
              help="The anchor public key to trust [default: the snapshot's, else your own "
                   "anchor key's].")
@click.option("--accept-loss", type=click.IntRange(1), metavar="N",
              help="Restore a snapshot older than the latest anchor, losing its N events after "
                   "the snapshot (the number the refusal names).")
@json_option
@common
def restore(env: Env, folder: str, to: str, anchors_dir: str | None, public_key: str | None,
            accept_loss: int | None) -> None:
    """Restore a backup into an empty database: verify it, record the restore, re-anchor.

    The snapshot is checked against its manifest (a truncated or changed file is
    refused), the anchors against the snapshot's database; then it is copied in,
    and its chain (with your chain key) and every anchor up to its last event are
    verified. A `restore` event names the snapshot's last event, and a new anchor
    is signed. If an anchor signed an event the snapshot does not hold, those
    events are lost: the restore says how many and needs --accept-loss N. Any
    refusal leaves the target empty.

    \b
    Example:  starfund restore /srv/backups/2025-05-20 --to postgresql://u@db/starfund2
              starfund restore backup-dir --to restored.db --accept-loss 129
    """
    source = Path(folder)
    manifest = snapshots.read_manifest(source)
    need = ", ".join(db.heads())
    if manifest["revision"] != need:
        raise snapshots.SnapshotError(
            f"the snapshot is at revision {manifest['revision']}, this starfund needs {need}: "
            "restore it with the release that made it (then upgrade with `starfund init`)")
    empty, why = snapshots.is_empty(to)
    if not empty:
        raise BadValue(f"--to {to}: {why}; restore writes only into an empty database")
    head = manifest["last_event"]
    given = _anchor_files(Path(anchors_dir) if anchors_dir else None)
    foreign = [p.name for p, b in given if b["database"] != manifest["database"]]
    if foreign:
        raise BadValue(f"{anchors_dir}: {foreign[0]} anchors database another database than "
                       f"the snapshot's ({manifest['database']}): a snapshot of another "
                       "database, or the anchors of another; nothing was restored")
    later = {(b["seq"], b["hash"]) for _, b in given if b["seq"] > head["seq"]}
    lost = max((s for s, _ in later), default=head["seq"]) - head["seq"]
    if lost and accept_loss != lost:
        raise UserError(
            f"the snapshot ends at event {head['seq']}, but an anchor in {anchors_dir} signed "
            f"event {head['seq'] + lost}: restoring it loses {lost} event(s) "
            f"({head['seq'] + 1}-{head['seq'] + lost}) recorded after the backup. If that is "
            f"what you mean, say so with --accept-loss {lost}; nothing was restored")
    snapshots.put_back(manifest, source, to)
    try:
        done = _after(env, manifest, source, to, anchors_dir, public_key, sorted(later), lost)
    except BaseException:
        snapshots.clear(to)
        raise
    if env.as_json:
        return emit_json(done)
    echo(f"restored {source} into {to}: {done['checked']} events verified, anchors: "
         f"{done['anchors_held']} held" + (f", {len(later)} superseded" if later else "") +
         f"; restore recorded as event {done['restore_event']}"
         + (f" (losing {lost} event(s) after {head['seq']}, as accepted)" if lost else ""))
    echo(f"new anchor: {done['anchor']}")


def _after(env: Env, manifest: dict[str, Any], source: Path, to: str, anchors_dir: str | None,
           public_key: str | None, later: list[tuple[int, str]], lost: int) -> dict[str, Any]:
    """Once copied in: the database checked, the actor found in it, the chain and the anchors
    verified, the restore recorded and anchored. Raises (the caller clears the target)."""
    target = Env(to, env.as_name, settings=env.settings)
    target.service = True       # the service user may restore (it owns the chain key)
    engine = target.engine      # checked at this release's schema; who acts found in it
    try:
        with db.reading(engine) as conn:
            if meta.database_id(conn) != manifest["database"]:
                raise BadValue(f"{source}: the database inside is {meta.database_id(conn)}, the "
                               f"manifest says {manifest['database']}: a snapshot of another "
                               "database; nothing was restored")
        actor = permissions.check(target.engine, target.actor, "backup.restore")
        with db.reading(engine) as conn:
            key = keys.load_chain_key(manifest["database"])
            result = audit.check(conn, key)
            if not result.ok:
                raise UserError("the restored trail does not verify: " + "; ".join(
                    p.message for p in result.problems[:3]) + "; nothing was restored")
            trusted = public_key or _own_key(conn) or _snapshot_key(source)
            found = []
            for where in (source / "anchors", Path(anchors_dir) if anchors_dir else None):
                if where is not None and where.is_dir() and any(where.glob("anchor-*.json")):
                    found += anchors.verify(conn, where, trusted)
        wrong = [f for f in found if f.problem and (f.seq is None or f.seq <= manifest[
            "last_event"]["seq"])]
        if wrong:
            raise UserError(f"{wrong[0].path.name}: {wrong[0].problem}; nothing was restored")
        head = manifest["last_event"]
        with engine.begin() as conn:
            (seq,) = audit.record(conn, actor, [audit.Event(RESTORE, payload={
                "snapshot": {"seq": head["seq"], "hash": head["hash"],
                             "taken_at": manifest["taken_at"], "release": manifest["release"],
                             "revision": manifest["revision"]},
                "lost_events": lost, "superseded_anchors": [list(x) for x in later]})])
        folder = Path(anchors_dir or "audit-anchors")
        path, body, _ = anchoring.anchor_now(engine, actor, folder, None)
        return {"checked": result.checked, "anchors_held": sum(1 for f in found if not f.problem
                                                                 and f.seq <= head["seq"]),
                "superseded": len(later), "restore_event": seq, "lost_events": lost,
                "anchor": str(path), "anchored_seq": body["seq"]}
    finally:
        engine.dispose()


def _own_key(conn: Any) -> str | None:
    """The operator's own anchor public key (never the snapshot's first: whoever made the
    snapshot chose that file)."""
    try:
        return anchors.public_key_of(conn)
    except UserError:
        return None


def _snapshot_key(source: Path) -> str | None:
    path = source / "anchor-public-key.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None
