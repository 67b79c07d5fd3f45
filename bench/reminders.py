"""Reminder scan and enqueue over many applications (issue 4's measure).

One call with N drafts (default 100,000), created through the engine. Then:

- scan: the declaration reminder's audience query (who still has a draft,
  with the context of the message each gets), one query for the whole call;
- firing: `firing.run_due` at a time when the 7-day reminder is due:
  claim the reminder deadline, scan, write N outbox rows, mark it fired and
  audit it, in one transaction.

    .venv/bin/python bench/reminders.py                     # SQLite, 100,000
    .venv/bin/python bench/reminders.py --backend postgres
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from lifecycle import kinds
from lifecycle.acts import calls  # noqa: E402
from lifecycle.core import clock, db
from lifecycle.core.models import Notification, Society  # noqa: E402
from lifecycle.engine import engine
from lifecycle.scheduling import firing, reminders
from notifications import contexts


def seed(url: str, n: int) -> None:
    e = db.make_engine(url)
    _seed.found(e)
    clock.set_now("2025-02-01 09:00")
    config = kinds.load(_seed.ROOT / "examples" / "call.toml").model_copy(
        update={"id": _seed.CALL_ID})
    cats = _seed.CATEGORIES
    with db.transaction(e) as s:
        conn = s.connection()
        calls.create(conn, config, "bench-admin")
        socs = [{"id": f"S{i:06d}", "name": f"基准测试{i}学会", "name_en": f"Bench Society {i}",
                 "email": f"s{i}@example.org", "institution": "", "language": "zh",
                 "annual_inspection_passed": True, "penalty": False}
                for i in range((n + len(cats) - 1) // len(cats))]
        for start in range(0, len(socs), 10000):
            conn.execute(insert(Society), socs[start:start + 10000])
    clock.set_now(_seed.CREATED_AT)
    apps = [{"id": f"{_seed.CALL_ID}-{i:06d}", "society_id": f"S{i // len(cats):06d}",
             "category": cats[i % len(cats)], "title": f"基准项目 {i}",
             "title_en": f"Bench project {i}", "discipline": "", "requested_amount": 20000,
             "excluded_experts": [], "fields": {"summary": "摘要"}} for i in range(n)]
    with db.transaction(e) as s:
        engine.create_applications(s.connection(), config, apps, "bench-admin")
    clock.set_now(None)
    e.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    if args.backend == "postgres" and _seed.pg_available():
        raise SystemExit(f"no PostgreSQL: {_seed.pg_available()}")
    url, drop = _seed.new_database(args.backend)
    try:
        t = time.perf_counter()
        seed(url, args.n)
        print(f"{args.backend}: seeded {args.n:,} drafts in {time.perf_counter() - t:.1f} s")
        e = db.make_engine(url)
        clock.set_now("2025-04-01 09:00")              # the 7-day reminder is due
        now = clock.now()
        with e.connect() as conn:
            call = engine.load_call(conn, _seed.CALL_ID)
            ctx = contexts.deadline("declaration_closes", call.calendar.declaration_closes, now)
            t = time.perf_counter()
            found = reminders.AUDIENCES["declaration_closes"].load(conn, call, ctx, "7d", now, "")
            scan = time.perf_counter() - t
        print(f"  scan:   {len(found):,} to remind in {scan:.2f} s "
              f"({len(found) / scan:,.0f} applications/s)")
        del found
        t = time.perf_counter()
        fired = firing.run_due(e, now)
        seconds = time.perf_counter() - t
        with e.connect() as conn:
            queued = conn.execute(select(func.count()).select_from(Notification)
                                  .where(Notification.kind == "remind_declaration")).scalar()
        print(f"  firing: {', '.join(f.kind + ' ' + f.outcome for f in fired)}; {queued:,} "
              f"reminders enqueued in {seconds:.2f} s ({queued / seconds:,.0f} reminders/s)")
        e.dispose()
    finally:
        clock.set_now(None)
        drop()


if __name__ == "__main__":
    main()
