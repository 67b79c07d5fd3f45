"""Expert review at scale: 1,000 experts, 10,000 applications x 5 reviews.

Prints wall-clock times of:
- assignment, the algorithm alone (`lifecycle.rules.assignment.plan`);
- assignment through the database (`lifecycle.acts.assignment.assign`: load, plan,
  insert 50,000 assignments and their 50,000 audit events, one transaction);
- importing the 50,000 returned score sheets as one wide CSV (`review import`'s
  function: read, check, executemany, audit);
- aggregation and ranking of the 50,000 reviews, the computation alone
  (`lifecycle.rules.ranking.aggregates` + `.cut`) and through the engine (`advance rank`).

    .venv/bin/python bench/review.py                       # SQLite
    .venv/bin/python bench/review.py --backend postgres
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from sqlalchemy import bindparam, insert, select, update  # noqa: E402

from lifecycle.acts import assignment, scoresheets  # noqa: E402
from lifecycle.core import clock, db
from lifecycle.core.models import Application, Assignment, Expert  # noqa: E402
from lifecycle.engine import engine
from lifecycle.rules import ranking
from lifecycle.rules.assignment import plan

DISCIPLINES = [f"d{i:02d}" for i in range(20)]


def experts(n: int, n_societies: int, rng: random.Random) -> list[dict]:
    return [{"id": f"E{i:05d}", "name": f"专家{i}", "name_en": "", "email": f"e{i}@example.org",
             "institution": f"Inst{rng.randrange(60)}", "language": "zh",
             "disciplines": rng.sample(DISCIPLINES, 2),
             "societies": [f"S{rng.randrange(n_societies):06d}" for _ in range(2)],
             "conflict_societies": [f"S{rng.randrange(n_societies):06d}"]
             if rng.random() < 0.1 else [],
             "conflict_institutions": [f"Inst{rng.randrange(50)}"] if rng.random() < 0.05 else []}
            for i in range(n)]


def timed(label: str, fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    print(f"  {label:<58} {time.perf_counter() - t:8.2f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--apps", type=int, default=10000)
    ap.add_argument("--experts", type=int, default=1000)
    ap.add_argument("--per", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    n_soc = (args.apps + 4) // 5
    print(f"bench/review.py: {args.experts} experts, {args.apps} applications x {args.per} "
          f"reviews, {args.backend}")

    url, drop = _seed.new_database(args.backend)
    try:
        _seed.seed_declared(url, args.apps)
        e = db.make_engine(url)
        pool = experts(args.experts, n_soc, rng)
        with db.transaction(e) as s:
            conn = s.connection()
            conn.execute(insert(Expert), pool)
            ids = list(conn.execute(select(Application.id).where(
                Application.call_id == _seed.CALL_ID)).scalars())
            conn.execute(update(Application).where(Application.id == bindparam("b_id"))
                         .values(discipline=bindparam("d"), excluded_experts=bindparam("x")),
                         [{"b_id": a, "d": rng.choice(DISCIPLINES),
                           "x": [f"E{rng.randrange(args.experts):05d}"] if rng.random() < 0.1
                           else []} for a in ids])
        clock.set_now(_seed.CLOSE_AT)
        engine.advance_in_tx(e, _seed.CALL_ID, "close_declaration", "bench-admin")

        # 1. the algorithm alone
        with e.connect() as conn:
            reviewers, apps, base, _ = assignment.load_pool(conn, _seed.CALL_ID)
        result = timed(f"assignment, algorithm only ({len(apps)} x {args.per})",
                       plan, reviewers, apps, args.per, None, args.seed, base)
        assert not result.short, list(result.short.items())[:3]
        matched = sum(1 for p in result.pairs if p[2])
        loads = list(result.loads.values())
        print(f"    {len(result.pairs)} pairs, load {min(loads)}..{max(loads)} (limit "
              f"{result.max_load}), discipline matched {matched / len(result.pairs):.0%}")

        # 2. through the database, audited
        def assign_db():
            with db.transaction(e) as s:
                return assignment.assign(s.connection(), _seed.CALL_ID, "bench-admin",
                                         per_application=args.per, seed=args.seed)
        r = timed("assignment through the database (insert + audit)", assign_db)
        assert r["assigned"] == args.per * len(apps)
        timed(f"advance start_review ({r['assigned']} expert notifications)", engine.advance_in_tx, e,
              _seed.CALL_ID, "start_review", "bench-admin")

        # 3. score sheets: one wide CSV of every review
        with e.connect() as conn:
            call = engine.load_call(conn, _seed.CALL_ID)
            pairs = conn.execute(select(Assignment.expert_id, Assignment.application_id)
                                 .where(Assignment.call_id == _seed.CALL_ID)).all()
        quality = {a: rng.uniform(0.6, 0.97) for a in ids}
        folder = Path(tempfile.mkdtemp(prefix="starfund-bench-"))
        path = folder / "scores.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["expert_id", "application_id"] + [c.id for c in call.criteria])
            for ex, a in pairs:
                q = quality[a]
                w.writerow([ex, a] + [round(min(c.max, c.max * (q + rng.uniform(-.05, .05))), 1)
                                      for c in call.criteria])
        clock.set_now("2025-04-30 10:00")

        def import_db():
            with db.transaction(e) as s:
                return scoresheets.import_file(s.connection(), _seed.CALL_ID, path, "bench-desk")
        r = timed(f"review import of {len(pairs)} sheets (one wide CSV)", import_db)
        assert r["scored"] == len(pairs)
        clock.set_now("2025-05-07 10:00")
        engine.advance_in_tx(e, _seed.CALL_ID, "close_review", "bench-admin")

        # 4. aggregation and ranking
        with e.connect() as conn:
            reviews = ranking.load_reviews(conn, _seed.CALL_ID)
            meta = conn.execute(select(Application.id, Application.category,
                                       Application.requested_amount, Application.declared_at)
                                .where(Application.call_id == _seed.CALL_ID)).all()
        aggs = timed(f"aggregation of {len(reviews)} reviews", ranking.aggregates, reviews, call)
        entries = [ranking.Entry(m.id, m.category, m.requested_amount, m.declared_at,
                                 aggs[m.id]) for m in meta if m.id in aggs]
        timed(f"ranking + budget cut of {len(entries)} applications", ranking.cut, entries, call)
        norm = call.model_copy(update={"review": call.review.model_copy(
            update={"normalise": True})})
        timed("aggregation with per-expert normalisation", ranking.aggregates, reviews, norm)
        rep = timed("advance rank (load, aggregate, rank, cut, write, audit)", engine.advance_in_tx, e,
                    _seed.CALL_ID, "rank", "bench-admin")
        print(f"    ranked {rep.moved_total}, skipped {rep.skipped_total}")
        e.dispose()
    finally:
        clock.set_now(None)
        drop()


if __name__ == "__main__":
    main()
