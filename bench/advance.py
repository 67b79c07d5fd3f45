"""Batch advance against the database's own floor.

One call with N applications (default 100,000) in state 'declared' (reached
through the engine: create_applications, then advance submit). Then, on
identical copies of that database (a fresh one for each run, so `measure` may be
repeated on the same seeded database):

- starfund: `engine.advance(call, "close_declaration")`, run in a child process
  so that its peak memory is the child's own peak resident set (whole
  process, Python and imports included: VmHWM from /proc/self/status; the
  peak just before the advance is printed beside it);
- floor: the same writes with the raw driver (sqlite3 or psycopg) in one
  transaction: read the candidates, one UPDATE of the states, executemany of
  the hash-chained audit rows, executemany of the outbox rows.

With --progress, the advance is also timed drawing its progress bar (the command
line's, `lifecycle.progress_bar`) on a pseudo-terminal, as `starfund advance` does
on a terminal, on a third copy; the load average is printed before each timing (the
machine may be shared).

    .venv/bin/python bench/advance.py                  # SQLite, 100,000
    .venv/bin/python bench/advance.py --backend postgres --n 20000
    .venv/bin/python bench/advance.py --progress       # also with the bar drawn
    .venv/bin/python bench/advance.py --n 10000000 --starfund-only   # time and memory alone

With --starfund-only the advance runs once, on the seeded database itself (no copy, no
floor): at 10,000,000 applications a copy of the seeded database is some 24 GB on
PostgreSQL, and the floors hold every candidate and row in memory (they are written as
the plain fetchall-then-write a person would write), which 10,000,000 does not fit.
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import pty
import resource
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402

TRIGGER = "close_declaration"


# --- starfund, in a child process ----------------------------------------------

def _hwm_kb() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over
    from the forking parent, which here is the much bigger seeding process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(url: str, progress: bool = False) -> None:
    from contextlib import nullcontext
    from types import SimpleNamespace

    from lifecycle.core import clock, db
    from lifecycle.core.progress import SILENT
    from lifecycle.engine import engine
    from lifecycle.progress_bar import drawn, shown

    e = db.make_engine(url)
    with e.connect() as c:  # open the pool's connection before measuring
        c.exec_driver_sql("SELECT 1")
    clock.set_now(_seed.CLOSE_AT)
    before = _hwm_kb()
    watcher = SimpleNamespace(as_json=False, quiet=False)
    if progress and not drawn(watcher):
        raise SystemExit("--progress: standard error is not a terminal, no bar would be drawn")
    cpu = time.process_time()
    t = time.perf_counter()
    with shown(watcher, f"{_seed.CALL_ID} {TRIGGER}") if progress else nullcontext(SILENT) as p:
        report = engine.advance_in_tx(e, _seed.CALL_ID, TRIGGER, "bench-admin", progress=p)
    seconds = time.perf_counter() - t
    cpu = time.process_time() - cpu  # every thread's: the bar's refreshes included
    peak = _hwm_kb()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_before_kb": before, "rss_peak_kb": peak,
                      "moved": report.moved_total, "notifications": report.notifications}))


def time_starfund(url: str, progress: bool = False) -> dict:
    """Run the advance in a fresh process; its time and its peak RSS. With `progress`, its
    standard error is a pseudo-terminal (read and thrown away as it is drawn) and the
    command line's bar is drawn on it."""
    argv = [sys.executable, __file__, "--child", url] + (["--progress"] if progress else [])
    if not progress:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        stdout, stderr, code = out.stdout, out.stderr, out.returncode
    else:
        master, slave = pty.openpty()
        drawn: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(master, drawn), daemon=True)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True,
                                env={**os.environ, "TERM": "xterm"})
        os.close(slave)
        reader.start()
        stdout, _ = proc.communicate()
        reader.join(timeout=10)
        os.close(master)
        stderr, code = b"".join(drawn).decode("utf-8", "replace"), proc.returncode
        if code == 0 and "rows" not in stderr:
            raise SystemExit("--progress: the child drew no bar")
    if code != 0:
        raise SystemExit(f"advance failed:\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1])


def _drain(fd: int, into: list[bytes]) -> None:
    """Read a pseudo-terminal until its other end is closed (the terminal's reader)."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        into.append(data)


def load() -> str:
    """The load average now (1, 5, 15 minutes), as `uptime` prints it."""
    return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the floor: the same writes with the raw driver -------------------------------

def _digest(secret: bytes, prev: str, seq: int, at: str, written: str, actor: str, action: str,
            call_id: str, app_id: str, from_state: str, to_state: str, payload: str,
            hash_name: str = "sha256") -> str:
    """The keyed chain's HMAC (lifecycle.core.audit), written out again by hand."""
    text = "\x1f".join([prev, str(seq), at, written, actor, "", action, call_id, app_id,
                        from_state, to_state, payload])
    return hmac.digest(secret, text.encode("utf-8"), hash_name).hex()


def _chain_secret(url: str) -> tuple[bytes, str]:
    """The database's chain key and its HMAC's hash (sha256, or sm3 for `init --crypto sm`),
    read before the floor's clock starts (the engine reads it too, inside its timing)."""
    from lifecycle.core import audit, db

    e = db.make_engine(url)
    with e.connect() as conn:
        key = audit.chain_key(conn)
    e.dispose()
    return key.secret, key.hash


def floor(url: str, dest: str = "eligible", kind: str = "formal_check_passed",
          copy: bool = False) -> dict:
    """The advance's database work, hand-written against the raw driver, in one transaction.

    `copy` (PostgreSQL): COPY the audit and outbox rows instead of executemany, the
    fastest way psycopg has; the issue's floor is the executemany one.
    """
    now = datetime.fromisoformat(_seed.CLOSE_AT)
    at = now.isoformat(sep=" ")
    secret, hash_name = _chain_secret(url)
    sqlite = "://" not in url
    p = "?" if sqlite else "%s"
    conn = _seed.raw_connect(url)
    t = time.perf_counter()
    cur = conn.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")
    cur.execute(f"SELECT a.id, a.version, a.title, a.title_en, a.category, a.requested_amount,"
                f" a.granted_amount, a.score, a.decision_reason, s.id, s.email, s.name,"
                f" s.name_en FROM applications a JOIN societies s ON s.id = a.society_id"
                f" WHERE a.call_id = {p} AND a.state = 'declared'", (_seed.CALL_ID,))
    apps = cur.fetchall()
    cur.execute(f"SELECT config FROM calls WHERE id = {p}", (_seed.CALL_ID,))
    config = cur.fetchone()[0]
    config = json.loads(config) if isinstance(config, str) else config
    call = {"id": _seed.CALL_ID, "title": config["title"], "title_en": config["title_en"]}
    cur.execute(f"UPDATE applications SET state = {p}, version = version + 1, updated_at = {p}"
                f" WHERE call_id = {p} AND state = 'declared'", (dest, now, _seed.CALL_ID))
    cur.execute("SELECT seq, hash FROM audit_head WHERE id = 1"
                + ("" if sqlite else " FOR UPDATE"))
    seq, prev = cur.fetchone()
    written = datetime.now().replace(microsecond=0)
    written_text = written.isoformat(sep=" ")
    audit_rows, outbox_rows = [], []
    for (app_id, version, title, title_en, category, amount, granted, score, reason, soc_id,
         email, soc_name, soc_name_en) in apps:
        seq += 1
        payload = '{"version":%d}' % (version + 1)
        h = _digest(secret, prev, seq, at, written_text, "bench-admin", TRIGGER, _seed.CALL_ID,
                    app_id, "declared", dest, payload, hash_name)
        audit_rows.append((seq, now, written, "bench-admin", None, TRIGGER, _seed.CALL_ID, app_id,
                           "declared", dest, payload, prev, h))
        prev = h
        # the same message context the engine writes (notifications.contexts.state_change)
        context = json.dumps({"call": call, "at": at, "application": {
            "id": app_id, "title": title, "title_en": title_en, "category": category,
            "requested_amount": amount, "granted_amount": granted, "score": score,
            "decision_reason": reason}, "society": {"id": soc_id, "name": soc_name,
                                                    "name_en": soc_name_en},
            "state": dest, "state_label": "形式审查通过 formal check passed", "because": []})
        outbox_rows.append((f"{kind}:{app_id}:v{version + 1}:society", _seed.CALL_ID, app_id,
                            "society", soc_id, email, kind, "zh", context, "pending", 0, "", now,
                            now))
    audit_cols = ("seq, at, written_at, actor, \"by\", action, call_id, application_id, from_state,"
                  " to_state, payload, prev_hash, hash")
    outbox_cols = ("dedupe_key, call_id, application_id, recipient_kind, recipient_id, recipient,"
                   " kind, language, context, status, attempts, last_error, created_at,"
                   " next_attempt_at")
    if copy and not sqlite:
        with cur.copy(f"COPY audit_events ({audit_cols}) FROM STDIN") as c:
            for r in audit_rows:
                c.write_row(r)
        with cur.copy(f"COPY notifications ({outbox_cols}) FROM STDIN") as c:
            for r in outbox_rows:
                c.write_row(r)
    else:
        cur.executemany(f"INSERT INTO audit_events ({audit_cols}) VALUES "
                        f"({', '.join([p] * 13)})", audit_rows)
        cur.executemany(f"INSERT INTO notifications ({outbox_cols}) VALUES "
                        f"({', '.join([p] * 14)})", outbox_rows)
    mac = hmac.digest(secret, f"head\x1f{seq}\x1f{prev}".encode(), hash_name).hex()
    cur.execute(f"UPDATE audit_head SET seq = {p}, hash = {p}, mac = {p} WHERE id = 1",
                (seq, prev, mac))
    if sqlite:
        cur.execute("COMMIT")
    else:
        conn.commit()
    seconds = time.perf_counter() - t
    conn.close()
    return {"seconds": seconds, "moved": len(apps)}


def measure(url: str, out=print, progress: bool = False) -> dict:
    """Both timings on two identical copies of the seeded database at `url` (with
    `progress`, a third: the advance drawing its bar on a pseudo-terminal)."""
    clone, drop = _seed.clone_database(url)
    try:
        out(f"  floor (raw driver) ... ({load()})")
        f = floor(clone)
    finally:
        drop()
    copy_floor = None
    if "://" in url:
        clone, drop = _seed.clone_database(url)
        try:
            out("  floor with COPY (raw psycopg) ...")
            copy_floor = floor(clone, copy=True)["seconds"]
        finally:
            drop()
    out(f"  starfund advance (child process) ... ({load()})")
    clone, drop = _seed.clone_database(url)
    try:
        s = time_starfund(clone)
    finally:
        drop()
    drawing = None
    if progress:
        out(f"  starfund advance drawing its progress on a pseudo-terminal ... ({load()})")
        clone, drop = _seed.clone_database(url)
        try:
            drawing = time_starfund(clone, progress=True)["seconds"]
        finally:
            drop()
    if s["moved"] != f["moved"]:
        raise SystemExit(f"starfund moved {s['moved']} but the floor moved {f['moved']}")
    return {"starfund": s["seconds"], "floor": f["seconds"], "ratio": s["seconds"] / f["seconds"],
            "moved": s["moved"], "rss_peak_mb": s["rss_peak_kb"] / 1024, "copy_floor": copy_floor,
            "rss_before_mb": s["rss_before_kb"] / 1024, "with_progress": drawing,
            "load_after": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="applications (default 100,000)")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--progress", action="store_true",
                    help="also time the advance drawing its progress bar on a pseudo-terminal")
    ap.add_argument("--starfund-only", action="store_true",
                    help="time the advance alone, once, on the seeded database (no floors)")
    ap.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.progress)
        return
    if args.backend == "postgres" and (why := _seed.pg_available()):
        raise SystemExit(f"no PostgreSQL server at {_seed.PG_ADMIN}: {why}")
    url, drop = _seed.new_database(args.backend)
    try:
        print(f"{args.backend}: seeding {args.n:,} declared applications ... ({load()})",
              flush=True)
        t = time.perf_counter()
        _seed.seed_declared(url, args.n)
        print(f"  seeded in {time.perf_counter() - t:.0f} s", flush=True)
        if args.starfund_only:
            print(f"  starfund advance (child process) ... ({load()})", flush=True)
            s = time_starfund(url)
            print(f"\nbatch advance {TRIGGER} of {s['moved']:,} applications ({args.backend})")
            print(f"  starfund  {s['seconds']:8.2f} s   (cpu {s['cpu_seconds']:.2f} s)")
            print(f"  {load()} (after)")
            print(f"  peak RSS  {s['rss_peak_kb'] / 1024:8.0f} MB  (child process VmHWM; "
                  f"{s['rss_before_kb'] / 1024:.0f} MB before the advance)")
            return
        r = measure(url, progress=args.progress)
    finally:
        drop()
    print(f"\nbatch advance {TRIGGER} of {r['moved']:,} applications ({args.backend})")
    print(f"  starfund  {r['starfund']:8.2f} s")
    driver = "sqlite3" if args.backend == "sqlite" else "psycopg"
    print(f"  floor     {r['floor']:8.2f} s   (raw {driver}, executemany)")
    print(f"  ratio     {r['ratio']:8.2f} x")
    if r["with_progress"]:
        print(f"  drawing its progress on a pseudo-terminal {r['with_progress']:6.2f} s   "
              f"(ratio {r['with_progress'] / r['floor']:.2f} x; "
              f"{r['with_progress'] / r['starfund']:.3f} x without)")
    print(f"  {r['load_after']} (after)")
    if r["copy_floor"]:
        print(f"  floor with COPY {r['copy_floor']:6.2f} s   (ratio "
              f"{r['starfund'] / r['copy_floor']:.2f} x)")
    print(f"  peak RSS  {r['rss_peak_mb']:8.0f} MB  (child process VmHWM; "
          f"{r['rss_before_mb']:.0f} MB before the advance)")


if __name__ == "__main__":
    main()
