"""Where PostgreSQL's COPY overtakes executemany: the switch of lifecycle.core.bulk.

Times, on a throwaway PostgreSQL database, the two writes a batch advance makes through
`lifecycle.core.bulk`, at sizes from 1 row to a chunk's 5,000, once on each path
(`bulk.COPY_FROM_ROWS` set to 1: COPY; to a billion: executemany):

- an append (`insert_rows`, binary): audit-event rows;
- an insert that skips duplicate keys (`insert_ready_ignore`): outbox rows, whose COPY
  goes inside a SAVEPOINT (ON CONFLICT DO NOTHING on executemany).

Each size is written `reps` times in one transaction (rolled back), the two paths in turn;
the median per write is printed with the load average.

    .venv/bin/python bench/copy_switch.py
    .venv/bin/python bench/copy_switch.py --sizes 1,8,16,32,64 --rounds 5
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402

from lifecycle.core import bulk, db
from lifecycle.core.models import AuditEvent
from notifications import queue

PATHS = {"COPY": 1, "executemany": 10**9}
NOW = datetime(2025, 4, 8, 9)
CONTEXT = json.dumps({"call": {"id": "bench", "title": "2025年度学会重点活动项目资助"},
                      "application": {"id": "bench-000001", "title": "基准项目 1",
                                      "requested_amount": 20000},
                      "society": {"id": "S000001", "name": "基准测试1学会"},
                      "state": "eligible", "because": []}, ensure_ascii=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,2,4,8,16,24,32,48,64,128,1000,5000")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both paths (median)")
    args = ap.parse_args()
    if why := _seed.pg_available():
        raise SystemExit(f"no PostgreSQL server at {_seed.PG_ADMIN}: {why}")
    url, drop = _seed.new_database("postgres")
    try:
        e = db.make_engine(url)
        _seed.found(e)
        measure(e, [int(x) for x in args.sizes.split(",")], args.rounds)
        e.dispose()
    finally:
        drop()


def measure(e, sizes: list[int], rounds: int) -> None:
    audit = AuditEvent.__table__
    outbox = queue._table
    seq, key = itertools.count(10**6), itertools.count()

    def events(n: int) -> list[tuple]:
        return [(next(seq), NOW, NOW, "bench-admin", None, "close_declaration", "bench",
                 "bench-000001", "declared", "eligible", '{"version":3}', "0" * 64, "1" * 64)
                for _ in range(n)]

    def messages(n: int) -> list[tuple]:
        return [(f"k:{next(key)}", "bench", None, "society", "S000001", "s@example.org",
                 "formal_check_passed", "zh", CONTEXT, "pending", 0, "", NOW, NOW)
                for _ in range(n)]

    writes = {
        "append (audit events, binary COPY)": lambda conn, rows: bulk.insert_rows(
            conn, audit, _AUDIT, rows, binary=True),
        "insert skipping duplicates (outbox)": lambda conn, rows: bulk.insert_ready_ignore(
            conn, outbox, queue.COLUMNS, rows, ["dedupe_key"]),
    }
    makers = {"append (audit events, binary COPY)": events,
              "insert skipping duplicates (outbox)": messages}
    print(f"({load()})")
    print("| write | rows | COPY ms | executemany ms | COPY / executemany |")
    print("|---|---:|---:|---:|---:|")
    kept = bulk.COPY_FROM_ROWS
    try:
        for what, write in writes.items():
            for n in sizes:
                reps = max(3, min(100, 20_000 // n))
                times: dict[str, list[float]] = {p: [] for p in PATHS}
                for _ in range(rounds):
                    for path, threshold in PATHS.items():
                        bulk.COPY_FROM_ROWS = threshold
                        batches = [makers[what](n) for _ in range(reps)]
                        with e.connect() as conn, conn.begin() as tx:
                            t = time.perf_counter()
                            for rows in batches:
                                write(conn, rows)
                            times[path].append((time.perf_counter() - t) / reps * 1000)
                            tx.rollback()
                c, m = (statistics.median(times[p]) for p in PATHS)
                print(f"| {what} | {n:,} | {c:.3f} | {m:.3f} | {c / m:.2f} |", flush=True)
    finally:
        bulk.COPY_FROM_ROWS = kept
    print(f"({load()})")


_AUDIT = ("seq", "at", "written_at", "actor", "by", "action", "call_id", "application_id",
          "from_state", "to_state", "payload", "prev_hash", "hash")


def load() -> str:
    return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
