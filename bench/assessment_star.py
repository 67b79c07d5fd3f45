"""Assessment, outcomes, payments and the star rating at scale: wall-clock times of batch acts.

Project part: `--apps` projects (default 10,000) are brought legitimately to `funded`
(engine moves, one reviewer each), then the timed acts: open_assessment, the grade import
(one CSV row per project), assess, decide_outcome (payments cut/released/cancelled in
the same transaction), payments pay, the money summary.
Star part: `--societies` (default 2,000) self-evaluations on the 18-indicator sheet,
checked scores, three experts each, close_review, the notice and the award; then a
second call re-rates them all (every star superseded: kept/raised/lowered).

    .venv/bin/python bench/assessment_star.py                  # SQLite
    .venv/bin/python bench/assessment_star.py --backend postgres
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from lifecycle import kinds
from lifecycle.acts import assessing, calls, payments, reviewing, stars  # noqa: E402
from lifecycle.core import clock, db
from lifecycle.core.models import Application, Assignment, Expert, Society  # noqa: E402
from lifecycle.engine import engine

ROOT = Path(__file__).resolve().parent.parent


def timed(label: str, fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    print(f"  {label:<58} {time.perf_counter() - t:8.2f} s")
    return out


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def in_tx(e, fn, *args):
    with db.transaction(e) as s:
        return fn(s.connection(), *args)


def project(e, n: int, work: Path, rng: random.Random) -> None:
    cfg = kinds.load(ROOT / "examples" / "call.toml").model_dump(exclude_unset=True)
    cfg.update(id="bench-p", budget_total=10 ** 10)
    for c in cfg["categories"]:
        c["budget"] = None
    cfg["review"].update(min_reviews=1, per_application=1, pass_mark=0)
    cfg["assessment"]["checkpoints"] = [
        {"id": "midterm", "name": "中期检查", "report_due": "2025-09-15T17:00:00"},
        {"id": "final", "name": "结题验收", "report_due": "2025-12-15T17:00:00"}]
    cfg["payments"] = {"mode": "instalments", "instalments": [
        {"label": "first", "percent": 50, "release": "award"},
        {"label": "mid", "percent": 30, "release": "midterm"},
        {"label": "last", "percent": 20, "release": "final"}]}
    call = kinds.parse(cfg)
    clock.set_now("2025-02-01 09:00")
    n_soc = n // 5 + 1
    with db.transaction(e) as s:
        conn = s.connection()
        calls.create(conn, call, "bench")
        conn.execute(insert(Society), [
            {"id": f"S{i:06d}", "name": f"学会{i}", "name_en": "", "email": f"s{i}@x.org",
             "institution": f"I{i % 50}", "language": "zh", "annual_inspection_passed": True,
             "penalty": False} for i in range(max(n_soc, 2100))])
        conn.execute(insert(Expert), [
            {"id": f"E{i:04d}", "name": f"专家{i}", "name_en": "", "email": f"e{i}@x.org",
             "institution": f"U{i}", "language": "zh", "disciplines": [], "societies": [],
             "conflict_societies": [], "conflict_institutions": []} for i in range(300)])
    cats = [c.id for c in call.categories]
    clock.set_now("2025-03-10 10:00")
    with db.transaction(e) as s:
        engine.create_applications(s.connection(), call, [
            {"id": f"P{i:06d}", "society_id": f"S{i // 5:06d}", "category": cats[i % 5],
             "title": f"项目{i}", "requested_amount": 20000, "fields": {"summary": "x"}}
            for i in range(n)], "bench")
    t = time.perf_counter()
    clock.set_now("2025-03-20 10:00")
    engine.advance_in_tx(e, call.id, "submit", "bench")
    clock.set_now("2025-04-08 09:00")
    engine.advance_in_tx(e, call.id, "close_declaration", "bench")
    in_tx(e, lambda c: reviewing.assign(c, call.id, "bench", per_application=1,
                                        max_load=n // 100 + 10))
    engine.advance_in_tx(e, call.id, "start_review", "bench")
    with e.connect() as conn:
        pairs = conn.execute(select(Assignment.expert_id, Assignment.application_id)).all()
    in_tx(e, lambda c: reviewing.record_scores(c, call.id, [
        (x, a, {cr.id: cr.max * 0.9 for cr in call.criteria}) for x, a in pairs], "bench"))
    clock.set_now("2025-05-07 09:00")
    for trig in ("close_review", "rank", "propose", "open_notice"):
        engine.advance_in_tx(e, call.id, trig, "bench")
    clock.set_now("2025-05-20 09:00")
    engine.advance_in_tx(e, call.id, "close_notice", "bench")
    print(f"  seeded {n} projects to awarded in {time.perf_counter() - t:.2f} s")
    timed(f"advance fund ({n}; {3 * n} instalments written)", engine.advance_in_tx, e, call.id,
          "fund", "bench")
    clock.set_now("2025-05-25 09:00")
    timed("payments pay (first instalments)", in_tx, e, payments.pay, call.id, "bench-finance")
    clock.set_now("2025-09-01 09:00")
    timed("advance open_assessment (records, deadlines)", engine.advance_in_tx, e, call.id,
          "open_assessment", "bench")
    grades = write_csv(work / "grades.csv", [
        {"application_id": f"P{i:06d}", "score": min(100, max(0, round(rng.gauss(82, 10), 1)))}
        for i in range(n)])
    clock.set_now("2025-09-16 09:00")
    timed(f"assessment grades import ({n} rows)", in_tx, e, assessing.import_grades, call.id,
          grades, "bench")
    timed("advance assess", engine.advance_in_tx, e, call.id, "assess", "bench")
    r = timed("advance decide_outcome (continue/adjust/terminate + money)", engine.advance_in_tx, e,
              call.id, "decide_outcome", "bench")
    print("    " + ", ".join(f"{t} {c}" for (_, t), c in sorted(r.moved.items())))
    timed("payments pay (mid-term instalments)", in_tx, e, payments.pay, call.id, "bench-finance")
    with e.connect() as conn:
        m = timed("money summary (status)", payments.money, conn, call.id)
    print(f"    {m}")


def star(e, n: int, work: Path, rng: random.Random) -> None:
    quality = {f"S{i:06d}": rng.uniform(0.45, 0.97) for i in range(n)}
    for year in (2025, 2026):
        cfg = kinds.load(ROOT / "examples" / "star-call.toml").model_dump(exclude_unset=True)
        cfg["id"] = f"bench-star-{year}"
        for k in ("declaration_opens", "declaration_closes", "review_due"):
            cfg["calendar"][k] = cfg["calendar"][k].replace(year=year)
        call = kinds.parse(cfg)
        sheet = call.star.indicators()
        print(f"  star call {call.id}: {n} societies x {len(sheet)} indicators")
        clock.set_now(f"{year}-06-01 10:00")
        in_tx(e, calls.create, call, "bench")

        def rows(col, noise, who, sheet=sheet):
            return [{"society_id": s, "indicator": i,
                     col: round(min(ind.max, max(0, ind.max * (quality[s] + rng.gauss(0, noise)))),
                                1)} for s in who for i, (_, ind) in sheet.items()]

        socs = sorted(quality)
        path = write_csv(work / f"self-{year}.csv", rows("self_score", 0.02, socs))
        clock.set_now(f"{year}-06-10 10:00")
        timed(f"star declare ({n * len(sheet)} rows)", in_tx, e, stars.import_self_evaluation,
              call.id, path, "bench")
        timed("advance submit", engine.advance_in_tx, e, call.id, "submit", "bench")
        clock.set_now(f"{year}-07-01 10:00")
        timed("advance close_declaration (formal check, bars)", engine.advance_in_tx, e, call.id,
              "close_declaration", "bench")
        with e.connect() as conn:
            socs = sorted(conn.execute(select(Application.society_id).where(
                Application.call_id == call.id, Application.state == "eligible")).scalars())
        print(f"    {len(socs)} eligible (the others barred by terminated projects)")
        path = write_csv(work / f"checked-{year}.csv", rows("checked_score", 0.01, socs))
        timed(f"star check ({len(socs) * len(sheet)} rows)", in_tx, e, stars.import_checked, call.id,
              path, "bench")
        timed("advance start_review", engine.advance_in_tx, e, call.id, "start_review", "bench")
        review = [{"expert_id": x, **r} for x in ("E0001", "E0002", "E0003")
                  for r in rows("score", 0.03, socs)]
        path = write_csv(work / f"experts-{year}.csv", review)
        timed(f"star review ({len(review)} rows)", in_tx, e, stars.import_reviews, call.id,
              path, "bench")
        clock.set_now(f"{year}-08-16 10:00")
        timed("advance close_review (totals, levels)", engine.advance_in_tx, e, call.id,
              "close_review", "bench")
        timed("advance open_notice", engine.advance_in_tx, e, call.id, "open_notice", "bench")
        clock.set_now(f"{year}-08-30 10:00")
        timed("advance close_notice (stars, supersession, rewards)", engine.advance_in_tx, e,
              call.id, "close_notice", "bench")
        with e.connect() as conn:
            table = timed("stars CALL (the star table)", stars.star_table, conn, call.id)
        changes: dict[str, int] = {}
        for r in table:
            changes[r["change"]] = changes.get(r["change"], 0) + 1
        print(f"    {len(table)} stars: {changes}")
        for s in quality:
            quality[s] = min(0.98, max(0.4, quality[s] + rng.gauss(0, 0.05)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--apps", type=int, default=10000)
    ap.add_argument("--societies", type=int, default=2000)
    args = ap.parse_args()
    url, drop = _seed.new_database(args.backend)
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    try:
        e = db.make_engine(url)
        _seed.found(e)
        rng = random.Random(1)
        print(f"assessment and stars on {args.backend}")
        project(e, args.apps, work, rng)
        star(e, args.societies, work, rng)
        e.dispose()
    finally:
        clock.set_now(None)
        drop()


if __name__ == "__main__":
    main()
