"""The benchmark of issue 6: starfund against the database's own floor, on SQLite and PostgreSQL.

For each backend, on a new throwaway database:

1. reminder scan: while N applications are drafts, the declaration reminder's
   audience query (lifecycle.scheduling.reminders: who still has a draft, with the message
   each gets) against the same SELECT through the raw driver; and the whole
   reminder firing (scan + outbox rows, rolled back);
2. `status` of the call (lifecycle.acts.reports.status) with N declared applications,
   against its queries through the raw driver;
3. batch advance close_declaration of N applications against the raw-driver
   floor (bench/advance.py), and the advance's peak memory;
4. the audit trail filled to A events (default 10 x N, i.e. 1,000,000), then the
   audit query for one application and for one actor over a month (mean per
   query over several different ones), against the same SQL through the raw
   driver, with the query plan printed to show the index it uses.

    .venv/bin/python bench/run.py                 # both backends, N = 100,000
    .venv/bin/python bench/run.py --n 10000       # a quick run
    .venv/bin/python bench/run.py --backend sqlite
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
import advance as advance_bench  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from lifecycle.acts import reports  # noqa: E402
from lifecycle.core import audit, clock, db, engine
from lifecycle.core.models import Deadline  # noqa: E402

GOALS = {"advance": 3.0, "audit_ms": 20.0, "memory_mb": 300.0}
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
    with e.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM audit_events")).scalar()
        if "://" in url:
            conn.execute(text("ANALYZE audit_events"))
            conn.commit()
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    plans = []
    cols = ("seq, at, actor, action, call_id, application_id, from_state, to_state, payload, "
            "prev_hash, hash")
    app_ids = [f"{_seed.CALL_ID}-{(i * 7919) % n:06d}" for i in range(20)]
    app_sql = f"SELECT {cols} FROM audit_events WHERE application_id = ? ORDER BY seq"
    actors = [f"clerk-{(i * 37) % ACTORS:03d}" for i in range(20)]
    since, until = datetime(2025, 6, 1), datetime(2025, 7, 1)
    actor_sql = (f"SELECT {cols} FROM audit_events WHERE actor = ? AND at >= ? AND at < ? "
                 "ORDER BY seq")
    sqlite = "://" not in url
    bound = (lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")) if sqlite else (lambda d: d)
    with e.connect() as conn:
        def q(**kw):
            return audit.query(conn, audit.Query(limit=None, **kw))

        q(application_id=app_ids[0])  # warm
        t = time.perf_counter()
        counts_app = [len(q(application_id=a)) for a in app_ids]
        per_app = (time.perf_counter() - t) / len(app_ids)
        t = time.perf_counter()
        counts_actor = [len(q(actor=w, since=since, until=until)) for w in actors]
        per_actor = (time.perf_counter() - t) / len(actors)
    found, month = sum(counts_app), sum(counts_actor)
    floor_app = statistics.mean(_raw_time(url, app_sql, (a,), repeat=5, expect=c)
                                for a, c in zip(app_ids, counts_app))
    floor_actor = statistics.mean(_raw_time(url, actor_sql, (w, bound(since), bound(until)),
                                            repeat=5, expect=c)
                                  for w, c in zip(actors, counts_actor))
    rows.append((f"audit query, one application ({total:,} events)", per_app, floor_app,
                 f"{found / len(app_ids):.0f} events each"))
    rows.append((f"audit query, one actor over a month ({total:,} events)", per_actor,
                 floor_actor, f"{month / len(actors):.0f} events each"))
    plans.append(("one application", _plan(url, app_sql, (app_ids[0],))))
    plans.append(("one actor over a month", _plan(url, actor_sql, (actors[0], bound(since),
                                                                    bound(until)))))
    return plans


# --- all of it ----------------------------------------------------------------------------

def run_backend(backend: str, n: int, audit_events: int, out=print) -> tuple[list, list, dict]:
    rows: list = []
    url, drop = _seed.new_database(backend)
    try:
        out(f"\n{backend}: seeding {n:,} applications ...")
        _seed.seed_declared(url, n, out=out,
                            at_drafts=lambda e: reminder_scan(e, rows, n, out))
        e = db.make_engine(url)
        status(url, e, rows, n)
        e.dispose()
        r = advance_bench.measure(url, out=out)
        rows.insert(0, (f"batch advance of {r['moved']:,} (close_declaration)", r["starfund"],
                        r["floor"], "floor: executemany (issue 2)"))
        if r["copy_floor"]:
            rows.insert(1, (f"batch advance of {r['moved']:,}, against a COPY floor",
                            r["starfund"], r["copy_floor"], "floor: COPY, psycopg's fastest"))
        e = db.make_engine(url)
        fill_audit(e, audit_events, n, out)
        plans = audit_queries(url, e, rows, n, out)
        e.dispose()
    finally:
        drop()
    return rows, plans, r


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="applications (default 100,000)")
    ap.add_argument("--audit-events", type=int, default=None,
                    help="audit events in the table for the queries (default 10 x N)")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = ap.parse_args()
    audit_events = args.audit_events or 10 * args.n
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends and (why := _seed.pg_available()):
        if args.backend == "postgres":
            raise SystemExit(f"no PostgreSQL server at {_seed.PG_ADMIN}: {why}")
        print(f"PostgreSQL skipped: no server at {_seed.PG_ADMIN}: {why}")
        backends.remove("postgres")
    t0 = time.perf_counter()
    results = {b: run_backend(b, args.n, audit_events) for b in backends}
    lines = ["", f"starfund benchmark: N = {args.n:,} applications, {audit_events:,} audit events",
             "", "| backend | figure | starfund | floor (raw driver) | ratio | note |",
             "|---|---|---|---|---|---|"]
    verdicts = []
    for b, (rows, _plans, r) in results.items():
        for name, mine, floor, note in rows:
            ratio = f"{mine / floor:.2f}x" if floor else "-"
            lines.append(f"| {b} | {name} | {fmt(mine)} | {fmt(floor)} | {ratio} | {note} |")
        lines.append(f"| {b} | peak memory of the advance (RSS) | {r['rss_peak_mb']:.0f} MB "
                     f"| - | - | {r['rss_before_mb']:.0f} MB before it |")
        fast = "ok" if r["ratio"] < GOALS["advance"] else "MISSED"
        small = "ok" if r["rss_peak_mb"] < GOALS["memory_mb"] else "MISSED"
        verdicts.append(f"{b}: advance {r['ratio']:.2f}x of the floor (goal < "
                        f"{GOALS['advance']:.0f}x): {fast}; memory {r['rss_peak_mb']:.0f} MB "
                        f"(goal < {GOALS['memory_mb']:.0f}): {small}")
        slow = [name for name, mine, _, _ in rows if name.startswith("audit query")
                and mine * 1000 >= GOALS["audit_ms"]]
        verdicts.append(f"{b}: audit queries under {GOALS['audit_ms']:.0f} ms: "
                        + ("ok" if not slow else "MISSED: " + "; ".join(slow)))
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
