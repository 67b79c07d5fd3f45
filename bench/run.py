"""The benchmark of issues 6 and 14: starfund against the database's own floor, on SQLite and
PostgreSQL, and how it grows.

For each backend and each size of the growth table (10,000, 100,000 and 1,000,000 up to
--n, and --n itself), on a new throwaway database seeded with that many declared
applications:

1. batch advance close_declaration against the raw-driver floor (bench/advance.py),
   --repeat paired runs (default 3) on fresh copies: the medians of the times and of
   the runs' own ratios, the COPY floor on PostgreSQL, and the advance's peak memory
   (its own process's VmHWM, the largest of the runs);
2. at min(N, 100,000) only: the reminder scan while the applications are drafts
   (lifecycle.scheduling.reminders) and `status` of the call, against their SELECTs;
3. on the largest database: the audit trail filled to A events (default 10 x N, so
   10,000,000 at N = 1,000,000) through `audit.record`, then `audit verify` against
   the raw driver reading every event and recomputing the keyed chain, and small pages
   of the trail as an auditor asks for them (one application, one call, one trigger,
   and one actor over a month) against the same SQL (`audit.page_sql`) through the raw
   driver, with the plain SELECT of the same page beside it and the query plans printed.

    .venv/bin/python bench/run.py                   # both backends, 10,000 and 100,000
    .venv/bin/python bench/run.py --n 1000000       # the growth table up to 1,000,000
    .venv/bin/python bench/run.py --n 10000 --repeat 1   # a quick run
    .venv/bin/python bench/run.py --backend sqlite
    .venv/bin/python bench/run.py --n 1000000 --audit-only   # 10,000,000 events, no growth
    .venv/bin/python bench/run.py --n 100000 --audit-events 1000000 --audit-only --crypto both
                                                    # verify with HMAC-SHA256 and HMAC-SM3
    .venv/bin/python bench/run.py --n 1000000 --audit-only --backend postgres --progress
        # and `starfund audit verify` itself, piped and drawing its bar on a pseudo-terminal
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
import advance as advance_bench  # noqa: E402
from advance import load  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from lifecycle.acts import reports  # noqa: E402
from lifecycle.core import audit, bulk, clock, db
from lifecycle.core.models import Deadline  # noqa: E402
from lifecycle.engine import engine

GOALS = {"advance_sqlite": 1.5, "advance_postgres": 1.3, "memory_mb": 250.0, "verify": 1.5,
         "audit_query": 2.0}
ACTORS = 100


def _raw_time(url: str, sql: str, params: tuple, repeat: int = 1, expect: int | None = None
              ) -> float:
    """Seconds for the raw driver to run `sql` and fetch every row (mean of `repeat`)."""
    conn = _seed.raw_connect(url)
    if "://" in url:
        sql = sql.replace("?", "%s")
    cur = conn.cursor()
    cur.execute(sql, params)
    got = len(cur.fetchall())  # warm
    if expect is not None and got != expect:
        raise SystemExit(f"the floor query found {got} rows, starfund {expect}: {sql}")
    t = time.perf_counter()
    for _ in range(repeat):
        cur.execute(sql, params)
        cur.fetchall()
    seconds = (time.perf_counter() - t) / repeat
    if "://" in url:
        conn.rollback()
    conn.close()
    return seconds


# --- 1. reminder scan ------------------------------------------------------------------

def reminder_scan(e, rows: list, n: int, out) -> None:
    """Time lifecycle.scheduling.reminders' scan (and firing); without it, the set-based query alone."""
    url = e.url.render_as_string(hide_password=False)
    url = url if url.startswith("postgresql") else e.url.database
    floor_sql = ("SELECT a.id, a.title, a.title_en, a.category, a.requested_amount, s.id, "
                 "s.name, s.name_en, s.email, s.language FROM applications a JOIN societies s "
                 "ON s.id = a.society_id WHERE a.call_id = ? AND a.state IN ('draft') "
                 "ORDER BY a.id")
    floor = _raw_time(url, floor_sql, (_seed.CALL_ID,))
    clock.set_now("2025-04-01 09:00")
    try:
        _reminders(e, rows, n, floor)
    except (ImportError, AttributeError, KeyError, TypeError) as why:
        out(f"  lifecycle.scheduling.reminders not usable ({type(why).__name__}: {why}): timing the "
            "set-based query of who needs a reminder instead")
        with e.connect() as conn:
            t = time.perf_counter()
            found = conn.execute(text(floor_sql.replace("?", ":c")), {"c": _seed.CALL_ID}).all()
            scan = time.perf_counter() - t
        rows.append(("reminder scan (set-based query only)", scan, floor,
                     f"{len(found):,} found"))
    finally:
        clock.set_now(None)


def _reminders(e, rows: list, n: int, floor: float) -> None:
    from lifecycle.scheduling import reminders
    from notifications import contexts

    audience = reminders.AUDIENCES["declaration_closes"]
    now = clock.now()
    with e.connect() as conn:
        call = engine.load_call(conn, _seed.CALL_ID)
        deadline = contexts.deadline("declaration_closes", call.calendar.declaration_closes,
                                     now)
        t = time.perf_counter()
        messages = audience.load(conn, call, deadline, "bench", now, "")
        scan = time.perf_counter() - t
    rows.append((f"reminder scan over {n:,} drafts (reminders.AUDIENCES)", scan, floor,
                 f"{len(messages):,} to remind"))
    del messages
    with e.connect() as conn:
        row = conn.execute(select(Deadline.__table__).where(
            Deadline.call_id == _seed.CALL_ID, Deadline.action == "remind",
            Deadline.fires == "declaration_closes").order_by(Deadline.due_at).limit(1)).first()
    if row is not None:
        with db.transaction(e) as s:
            t = time.perf_counter()
            outcome, note, count = reminders.fire(s.connection(), row, now)
            fired = time.perf_counter() - t
            s.rollback()
        rows.append(("reminder firing: scan + outbox rows (rolled back)", fired, None,
                     f"{outcome}: {count:,} messages"))


# --- 2. status ------------------------------------------------------------------------

def status(url: str, e, rows: list, n: int) -> None:
    with e.connect() as conn:
        reports.status(conn, _seed.CALL_ID)  # warm
        t = time.perf_counter()
        for _ in range(5):
            s = reports.status(conn, _seed.CALL_ID)
        seconds = (time.perf_counter() - t) / 5
    floor = sum(_raw_time(url, sql, (_seed.CALL_ID,), repeat=5) for sql in (
        "SELECT state, count(*) FROM applications WHERE call_id = ? GROUP BY state",
        "SELECT coalesce(sum(requested_amount), 0), coalesce(sum(granted_amount), 0) "
        "FROM applications WHERE call_id = ?",
        "SELECT * FROM deadlines WHERE call_id = ? ORDER BY due_at"))
    rows.append((f"status of a call with {s['total']:,} applications", seconds, floor, ""))


# --- 4. audit ---------------------------------------------------------------------------

def fill_audit(e, target: int, n: int, out) -> float:
    """Append events until the trail holds `target`, spread over a year and ACTORS actors."""
    with e.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM audit_events")).scalar()
    missing = max(target - have, 0)
    start = datetime(2025, 1, 1, 8, 0)
    chunk, per_transaction = 500, 50_000
    step = timedelta(minutes=365 * 24 * 60 * chunk / max(missing, 1))
    t = time.perf_counter()
    done = 0
    while done < missing:
        with db.transaction(e) as s:
            conn = s.connection()
            for _ in range(per_transaction // chunk):
                if done >= missing:
                    break
                size = min(chunk, missing - done)
                k = done // chunk
                events = (audit.Event("score_entry", _seed.CALL_ID,
                                      f"{_seed.CALL_ID}-{(done + i) % n:06d}", None, None,
                                      {"expert": f"E{(done + i) % 400:03d}", "total": 80.5})
                          for i in range(size))
                audit.record(conn, f"clerk-{k % ACTORS:03d}", events, at=start + k * step)
                done += size
    seconds = time.perf_counter() - t
    out(f"  audit trail filled with {missing:,} more events in {seconds:.1f} s "
        f"({missing / max(seconds, 1e-9):,.0f} events/s through audit.record)")
    return seconds


def _plan(url: str, sql: str, params: tuple) -> str:
    conn = _seed.raw_connect(url)
    cur = conn.cursor()
    if "://" in url:
        cur.execute("EXPLAIN " + sql.replace("?", "%s"), params)
        plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    else:
        cur.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(r[-1] for r in cur.fetchall())
    conn.close()
    return plan


def audit_queries(url: str, e, rows: list, n: int, out) -> list[tuple[str, str]]:
    """Small pages of the trail as an auditor asks for them (one application's events; a page
    of 50 of one call, newest first; a page of 50 of one trigger) and one actor over a
    month, through `audit.query`, against the same SQL through the raw driver: both timed
    the same way, key by key, each warmed once and then the mean of 5, back to back (a
    first, cold read of a big trail costs the disk's time, not starfund's); the median over
    20 keys."""
    with e.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM audit_events")).scalar()
        conn.execute(text("ANALYZE audit_events" if "://" in url else "ANALYZE"))
        conn.commit()
    cols = ("seq, at, written_at, actor, \"by\", action, call_id, application_id, from_state, "
            "to_state, payload, prev_hash, hash")
    sqlite = "://" not in url
    bound = (lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")) if sqlite else (lambda d: d)
    since, until = datetime(2025, 6, 1), datetime(2025, 7, 1)
    app_ids = [f"{_seed.CALL_ID}-{(i * 7919) % n:06d}" for i in range(20)]
    actors = [f"clerk-{(i * 37) % ACTORS:03d}" for i in range(20)]
    pages = [i * 50 for i in range(20)]
    cases = [
        ("one application", lambda a: audit.Query(application_id=a, limit=None), app_ids,
         f"SELECT {cols} FROM audit_events WHERE application_id = ? ORDER BY seq",
         lambda a: (a,)),
        ("one call, a page of 50, newest first",
         lambda o: audit.Query(call_id=_seed.CALL_ID, newest_first=True, limit=50, offset=o),
         pages, f"SELECT {cols} FROM audit_events WHERE call_id = ? ORDER BY seq DESC "
                "LIMIT 50 OFFSET ?", lambda o: (_seed.CALL_ID, o)),
        ("one trigger (submit), a page of 50",
         lambda o: audit.Query(action="submit", limit=50, offset=o), pages,
         f"SELECT {cols} FROM audit_events WHERE action = ? ORDER BY seq LIMIT 50 OFFSET ?",
         lambda o: ("submit", o)),
        ("one actor over a month", lambda w: audit.Query(actor=w, since=since, until=until,
                                                         limit=None), actors,
         f"SELECT {cols} FROM audit_events WHERE actor = ? AND at >= ? AND at < ? ORDER BY seq",
         lambda w: (w, bound(since), bound(until))),
    ]
    plans = []
    raw = _seed.raw_connect(url)
    cur = raw.cursor()

    def paired(k, a, b) -> tuple[float, float]:
        """a's and b's mean times over 6 rounds of the two in turn, each first every other
        round (what runs just before a query warms or cools the caches it finds)."""
        spent = {a: 0.0, b: 0.0}
        for i in range(6):
            for run in ((a, b) if i % 2 == 0 else (b, a)):
                t = time.perf_counter()
                run(k)
                spent[run] += time.perf_counter() - t
        return spent[a] / 6, spent[b] / 6

    def alone(k, run) -> float:
        t = time.perf_counter()
        for _ in range(3):
            run(k)
        return (time.perf_counter() - t) / 3

    with e.connect() as conn:
        # the floor runs on the driver connection under audit.query: the same server process
        # (on 2 CPUs, another connection's round trip is 45 or 85 µs as the scheduler places it)
        own = bulk.raw_cursor(conn)
        for what, make, keys, plain, params in cases:
            plain = plain if sqlite else plain.replace("?", "%s")

            def mine(k, make=make):
                return audit.query(conn, make(k))

            def same(k, make=make):   # audit.query's own SQL (audit.page_sql), raw driver
                own.execute(*audit.page_sql(conn, make(k)))
                return own.fetchall()

            def simple(k, plain=plain, params=params):   # the plain SELECT of the same page
                cur.execute(plain, params(k))
                return cur.fetchall()
            # paired, key by key: each warmed once, then starfund and its floor in turn (so both
            # share the moment's load); medians over the keys. The plain SELECTs after all the
            # pairs: on PostgreSQL one may read the whole trail, cooling the caches a pair finds
            counts, mine_each, floor_each = [], [], []
            for k in keys:
                counts.append(len(mine(k)))
                if len(same(k)) != counts[-1]:
                    raise SystemExit(f"the floor query found other rows than starfund: {what}")
                m, f = paired(k, mine, same)
                mine_each.append(m)
                floor_each.append(f)
            plain_each = []
            for k, n in zip(keys, counts):
                if len(simple(k)) != n:
                    raise SystemExit(f"the plain query found other rows than starfund: {what}")
                plain_each.append(alone(k, simple))
            rows.append((f"audit query, {what} ({total:,} events)",
                         statistics.median(mine_each), statistics.median(floor_each),
                         f"{sum(counts) / len(keys):.0f} events each; the plain SELECT "
                         f"{fmt(statistics.median(plain_each))}"))
            sql, values = audit.page_sql(conn, make(keys[0]))
            plans.append((what, _plan(url, sql, tuple(values))))
        own.close()
    if not sqlite:
        raw.rollback()
    raw.close()
    return plans


def audit_verify(targets: list[tuple[str, Any]], rows: list, out, repeat: int = 1,
                 progress: bool = False) -> None:
    """`audit verify` (lifecycle.core.audit.check: the keyed chain, its head and the
    set-based checks against the applications) and its chain walk alone, against the raw
    driver reading every event in order and recomputing the keyed chain with the database's
    HMAC (HMAC-SHA256, or HMAC-SM3 for crypto sm), on each (url, engine) of `targets` (the
    same trail, one per crypto); `repeat` rounds, each of the three on every target in turn
    (so that each crypto shares each moment's load), the medians."""
    times: list[list[tuple[float, float, float]]] = [[] for _ in targets]
    found: list[Any] = [None] * len(targets)
    for i in range(repeat):
        for k, (url, e) in enumerate(targets):
            with e.connect() as conn:
                key = audit.chain_key(conn)
                t = time.perf_counter()
                v = audit.check(conn, key)
                whole = time.perf_counter() - t
                t = time.perf_counter()
                audit._walk(conn, 20000, key, key.first_seq)
                walk = time.perf_counter() - t
            if not v.ok:
                raise SystemExit(f"audit verify found problems: {[p.message for p in v.problems]}")
            times[k].append((whole, walk, _verify_floor(url, key.secret, v.checked, key.hash)))
            found[k] = (key, v.checked)
            if repeat > 1:
                out(f"  verify round {i + 1}, crypto {key.crypto}: " + ", ".join(
                    f"{what} {x:.2f} s" for what, x in zip(("verify", "walk", "floor"),
                                                            times[k][-1])) + f" ({load()})")
    med = statistics.median
    for (key, checked), runs in zip(found, times):
        whole, walk, floor = (med(r[j] for r in runs) for j in range(3))
        crypto = f", crypto {key.crypto}" if key.crypto != "standard" else ""
        rows.append((f"audit verify, {checked:,} events (chain, head, state checks){crypto}",
                     whole, floor, f"floor: raw driver + HMAC-{key.hash.upper()} chain"
                     + (f"; median of {repeat}" if repeat > 1 else "")))
        rows.append((f"audit verify's chain walk alone, {checked:,} events{crypto}", walk,
                     floor, ""))
    if progress:      # the command itself, piped and on a pseudo-terminal (issue 32)
        url, _ = targets[0]
        key, checked = found[0]
        floor = _verify_floor(url, key.secret, checked, key.hash)
        out(f"  `starfund audit verify`, piped ... ({advance_bench.load()})")
        piped = _verify_command(url, pty_=False)
        out(f"  `starfund audit verify` on a pseudo-terminal ... ({advance_bench.load()})")
        drawn = _verify_command(url, pty_=True)
        rows.append((f"`starfund audit verify`, {checked:,} events, piped (no bar)", piped,
                     floor, "the whole command, start-up included"))
        rows.append((f"`starfund audit verify`, {checked:,} events, on a pseudo-terminal "
                     "(bar drawn)", drawn, floor, f"{drawn / piped:.3f}x piped"))


def _verify_command(url: str, pty_: bool) -> float:
    """Seconds of `starfund audit verify` as a process of its own; with `pty_`, its standard
    error a pseudo-terminal (read and thrown away as it is drawn), so the bar is drawn."""
    import pty
    import subprocess
    import threading

    script = Path(sys.executable).parent / "starfund"
    argv = ([str(script)] if script.exists() else
            [sys.executable, "-c", "from cli import main; main()"])
    argv += ["--db", url, "--as", "bench-admin", "audit", "verify"]
    env = {**os.environ, "TERM": "xterm"}
    t = time.perf_counter()
    if not pty_:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                              cwd=Path(__file__).resolve().parent.parent)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    else:
        master, slave = pty.openpty()
        drawn: list[bytes] = []
        reader = threading.Thread(target=advance_bench._drain, args=(master, drawn), daemon=True)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True, env=env,
                                cwd=Path(__file__).resolve().parent.parent)
        os.close(slave)
        reader.start()
        stdout, _ = proc.communicate()
        code = proc.returncode
        reader.join(timeout=10)
        os.close(master)
        stderr = b"".join(drawn).decode("utf-8", "replace")
    seconds = time.perf_counter() - t
    if code != 0 or "audit chain intact" not in stdout:
        raise SystemExit(f"audit verify failed ({code}):\n{stdout}\n{stderr}")
    if pty_ and "verifying" not in stderr:
        raise SystemExit(f"audit verify drew no bar on a pseudo-terminal:\n{stderr[-500:]}")
    if not pty_ and stderr.strip():
        raise SystemExit(f"audit verify, piped, printed on standard error:\n{stderr}")
    return seconds


def _verify_floor(url: str, secret: bytes, expect: int, hash_name: str = "sha256") -> float:
    import hmac

    conn = _seed.raw_connect(url)
    sqlite = "://" not in url
    cur = conn.cursor(name="verify_floor") if not sqlite else conn.cursor()
    t = time.perf_counter()
    cur.execute('SELECT seq, prev_hash, hash, at, written_at, actor, "by", action, call_id, '
                "application_id, from_state, to_state, payload FROM audit_events ORDER BY seq")
    prev, n, mac = "0" * 64, 0, hmac.digest
    while True:
        part = cur.fetchmany(20000)
        if not part:
            break
        for (seq, prev_hash, digest, at, written, actor, by, action, call_id, app_id, src, dst,
             payload) in part:
            if sqlite:
                at = at[:19] if at.endswith(".000000") else at
                written = written[:19] if written.endswith(".000000") else written
            else:
                at, written = at.isoformat(sep=" "), written.isoformat(sep=" ")
            text_ = "\x1f".join((prev, str(seq), at, written, actor, by or "", action,
                                 call_id or "", app_id or "", src or "", dst or "", payload))
            if prev_hash != prev or mac(secret, text_.encode(), hash_name).hex() != digest:
                raise SystemExit(f"the verify floor found a break at event {seq}")
            prev = digest
            n += 1
    seconds = time.perf_counter() - t
    cur.close()
    if not sqlite:
        conn.rollback()
    conn.close()
    if n != expect:
        raise SystemExit(f"the verify floor read {n} events, audit verify {expect}")
    return seconds


# --- all of it ----------------------------------------------------------------------------

SIZES = (10_000, 100_000, 1_000_000)


def growth_sizes(n: int) -> list[int]:
    return [s for s in SIZES if s < n] + [n]


def run_backend(backend: str, n: int, audit_events: int, repeats: int, out=print,
                audit_only: bool = False, cryptos: tuple[str, ...] = ("standard",),
                verify_repeat: int = 1, progress: bool = False) -> tuple[list, list, list]:
    """The growth of the advance (each size: `repeats` paired runs on copies of one seeded
    database, medians), the other figures at min(N, 100,000), the audit trail at
    `audit_events` on the largest database; with `audit_only`, only the audit trail on a
    database of N declared applications, once per crypto of `cryptos` (`init --crypto`: the
    same trail keyed with each; the audit queries on the first only)."""
    rows: list = []
    growth: list = []
    plans: list = []
    sizes = [n] if audit_only else growth_sizes(n)
    extras_at = None if audit_only else \
        min(n, 100_000) if min(n, 100_000) in sizes else sizes[0]
    if not audit_only and len(cryptos) > 1:
        raise SystemExit("--crypto both needs --audit-only (one trail per crypto)")
    filled: list[tuple[str, Any]] = []     # the largest size's databases, one per crypto
    drops: list[Any] = []
    try:
        for size, crypto in ((s, c) for s in sizes for c in cryptos):
            url, drop = _seed.new_database(backend)
            drops.append(drop)
            out(f"\n{backend}: seeding {size:,} applications (crypto {crypto}) ...")
            at_drafts = (lambda e, size=size: reminder_scan(e, rows, size, out)) \
                if size == extras_at else None
            _seed.seed_declared(url, size, out=out, at_drafts=at_drafts, crypto=crypto)
            if size == extras_at:
                e = db.make_engine(url)
                status(url, e, rows, size)
                e.dispose()
            runs = []
            for i in range(0 if audit_only else repeats):
                r = advance_bench.measure(url, out=out)
                out(f"  run {i + 1}: starfund {r['starfund']:.2f} s, floor {r['floor']:.2f} s, "
                    f"ratio {r['ratio']:.2f}x, peak {r['rss_peak_mb']:.0f} MB")
                runs.append(r)
            if runs:
                growth.append(summarise(size, runs))
            if size == sizes[-1]:
                e = db.make_engine(url)
                filled.append((url, e))
                fill_audit(e, audit_events, size, out)
                if crypto == cryptos[0]:
                    plans = audit_queries(url, e, rows, size, out)
            else:
                drops.remove(drop)
                drop()
        audit_verify(filled, rows, out, verify_repeat, progress)
    finally:
        for _, e in filled:
            e.dispose()
        for drop in drops:
            drop()
    return rows, plans, growth


def summarise(size: int, runs: list[dict]) -> dict:
    """Medians over paired runs; each ratio is the median of the runs' own ratios."""
    med = statistics.median
    copy = [r["starfund"] / r["copy_floor"] for r in runs if r["copy_floor"]]
    return {"n": size, "runs": len(runs), "starfund": med(r["starfund"] for r in runs),
            "floor": med(r["floor"] for r in runs), "ratio": med(r["ratio"] for r in runs),
            "copy_floor": med(r["copy_floor"] for r in runs) if copy else None,
            "copy_ratio": med(copy) if copy else None,
            "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
            "rss_before_mb": med(r["rss_before_mb"] for r in runs)}


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000,
                    help="applications of the largest batch (default 100,000); the growth "
                         "table also has each of 10,000, 100,000 and 1,000,000 below it")
    ap.add_argument("--audit-events", type=int, default=None,
                    help="audit events in the trail for verify and the queries (default 10 x N)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="paired runs of the advance per size (default 3; medians)")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--audit-only", action="store_true",
                    help="only the audit trail (verify, queries) on one database of N")
    ap.add_argument("--verify-repeat", type=int, default=1,
                    help="rounds of audit verify and its floor, in turn (default 1; medians)")
    ap.add_argument("--progress", action="store_true",
                    help="also time `starfund audit verify` itself, piped and on a "
                         "pseudo-terminal (its progress bar drawn)")
    ap.add_argument("--crypto", choices=["standard", "sm", "both"], default="standard",
                    help="the databases' `init --crypto` (both: with --audit-only, the same "
                         "trail once with each)")
    args = ap.parse_args()
    audit_events = args.audit_events or 10 * args.n
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends and (why := _seed.pg_available()):
        if args.backend == "postgres":
            raise SystemExit(f"no PostgreSQL server at {_seed.PG_ADMIN}: {why}")
        print(f"PostgreSQL skipped: no server at {_seed.PG_ADMIN}: {why}")
        backends.remove("postgres")
    t0 = time.perf_counter()
    cryptos = ("standard", "sm") if args.crypto == "both" else (args.crypto,)
    results = {b: run_backend(b, args.n, audit_events, args.repeat, audit_only=args.audit_only,
                              progress=args.progress,
                              cryptos=cryptos, verify_repeat=args.verify_repeat)
               for b in backends}
    lines = ["", f"starfund benchmark: N = {args.n:,} applications, {audit_events:,} audit events, "
             f"{platform.node()}, {os.cpu_count()} CPUs, "
             f"{datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}", "",
             f"Growth of the batch advance (close_declaration; median of {args.repeat} paired "
             "runs each; peak: the advance's process, VmHWM, the largest of the runs):", "",
             "| backend | N | starfund | floor (executemany) | ratio | COPY floor | ratio to "
             "COPY | peak memory |", "|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for b, (_rows, _plans, growth) in results.items():
        for g in growth:
            copy = (f"{fmt(g['copy_floor'])} | {g['copy_ratio']:.2f}x" if g["copy_floor"]
                    else "- | -")
            lines.append(f"| {b} | {g['n']:,} | {fmt(g['starfund'])} | {fmt(g['floor'])} | "
                         f"{g['ratio']:.2f}x | {copy} | {g['rss_peak_mb']:.0f} MB |")
            if g["n"] >= 100_000:
                goal = GOALS["advance_" + b]
                verdicts.append(f"{b}: advance of {g['n']:,}: {g['ratio']:.2f}x the floor (goal "
                                f"<= {goal}x): {'ok' if g['ratio'] <= goal else 'MISSED'}; "
                                f"peak {g['rss_peak_mb']:.0f} MB (goal < "
                                f"{GOALS['memory_mb']:.0f}): "
                                f"{'ok' if g['rss_peak_mb'] < GOALS['memory_mb'] else 'MISSED'}")
    lines += ["", "| backend | figure | starfund | floor (raw driver) | ratio | note |",
              "|---|---|---|---|---|---|"]
    for b, (rows, _plans, _growth) in results.items():
        for name, mine, floor, note in rows:
            ratio = f"{mine / floor:.2f}x" if floor else "-"
            lines.append(f"| {b} | {name} | {fmt(mine)} | {fmt(floor)} | {ratio} | {note} |")
            if floor and name.startswith("audit verify,"):
                sm = " (crypto sm)" if name.endswith("crypto sm") else ""
                verdicts.append(f"{b}: audit verify{sm} {mine / floor:.2f}x the floor (goal <= "
                                f"{GOALS['verify']}x): "
                                f"{'ok' if mine / floor <= GOALS['verify'] else 'MISSED'}")
            if floor and name.startswith("audit query") and "actor" not in name:
                verdicts.append(f"{b}: {name}: {mine / floor:.2f}x the raw SQL (goal <= "
                                f"{GOALS['audit_query']}x): "
                                f"{'ok' if mine / floor <= GOALS['audit_query'] else 'MISSED'}")
    print("\n".join(lines))
    print()
    for b, (_, plans, _) in results.items():
        for what, plan in plans:
            print(f"{b} plan, audit query for {what}:")
            print("    " + plan.replace("\n", "\n    "))
    print()
    print("\n".join(verdicts))
    print(f"\n(whole benchmark: {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
