"""Spreadsheet imports at scale: time and peak memory of `application import` as the file grows.

For each size (MB) it writes a CSV of declarations into bench/out/ (kept for
the next run), then, in a fresh subprocess per size (so each peak RSS is that
run's own), makes a new database with a call and 1,000 societies and imports
the file through `declarations.import_applications` inside `db.transaction`,
exactly as `starfund application import` does. Printed per size: rows,
seconds, rows/s, the process's peak RSS before the import (interpreter,
libraries, seeding) and after it. Memory that streams stays flat as the file
grows; memory that holds the file grows with it.

    .venv/bin/python bench/imports.py                          # 5 and 50 MB, SQLite
    .venv/bin/python bench/imports.py --sizes 5,20,50 --backend postgres
    .venv/bin/python bench/imports.py --encoding gb18030       # the file written in GB18030
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SOCIETIES = 1000
SUMMARY = ("本项目面向城市社区开展科学普及与学术交流活动，组织专家讲座、青少年科技营和学术沙龙，"
           "预计覆盖三千人次，形成调研报告一份。")


def make_csv(size_mb: int, encoding: str) -> Path:
    """A declarations CSV of about `size_mb` MB (written once, reused)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"applications-{size_mb}mb-{encoding}.csv"
    if path.exists():
        return path
    target = size_mb * 2**20
    with path.open("w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(["id", "society_id", "category", "title", "title_en", "discipline",
                    "requested_amount", "summary", "excluded_experts"])
        i = 0
        while f.tell() < target:
            for _ in range(1000):
                w.writerow([f"B{i:07d}", f"S{i % SOCIETIES:06d}",
                            _seed.CATEGORIES[i % len(_seed.CATEGORIES)], f"基准申报项目第{i}号",
                            f"Bench project number {i}", "物理", 20000 + i % 50000,
                            SUMMARY, "E00001;E00002" if i % 10 == 0 else ""])
                i += 1
    return path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(path: Path, backend: str) -> dict:
    """In this (fresh) process: a new database, the call and societies, then the import."""
    from sqlalchemy import insert

    from lifecycle import kinds
    from lifecycle.acts import calls, declarations
    from lifecycle.core import clock, db
    from lifecycle.core.models import Society

    url, drop = _seed.new_database(backend)
    try:
        e = db.make_engine(url)
        _seed.found(e)
        clock.set_now("2025-02-01 09:00")
        config = kinds.load(_seed.ROOT / "examples" / "call.toml").model_copy(
            update={"id": _seed.CALL_ID})
        with db.transaction(e) as s:
            conn = s.connection()
            calls.create(conn, config, "bench-admin")
            conn.execute(insert(Society), [
                {"id": f"S{i:06d}", "name": f"基准测试{i}学会", "name_en": f"Bench Society {i}",
                 "email": f"s{i}@example.org", "institution": f"Inst{i % 50}", "language": "zh",
                 "annual_inspection_passed": True, "penalty": False} for i in range(SOCIETIES)])
        clock.set_now(_seed.CREATED_AT)
        before = peak_mb()
        t = time.perf_counter()
        with db.transaction(e) as s:
            r = declarations.import_applications(s.connection(), _seed.CALL_ID, path,
                                                 "bench-admin")
        seconds = time.perf_counter() - t
        e.dispose()
        return {"rows": r["created"], "seconds": seconds, "peak_before_mb": before,
                "peak_mb": peak_mb()}
    finally:
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="5,50", help="CSV sizes in MB, comma-separated")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--encoding", default="utf-8", help="encoding the CSV is written in")
    ap.add_argument("--run", metavar="FILE", help=argparse.SUPPRESS)  # the per-size subprocess
    args = ap.parse_args()
    if args.run:
        print(json.dumps(run_one(Path(args.run), args.backend)))
        return
    if args.backend == "postgres" and (why := _seed.pg_available()):
        sys.exit(f"no PostgreSQL server: {why}")
    print(f"application import, {args.backend}, CSV in {args.encoding}")
    print(f"  {'file':>8} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak RSS before':>16} "
          f"{'peak RSS':>9}")
    for size in [int(s) for s in args.sizes.split(",")]:
        path = make_csv(size, args.encoding)
        done = subprocess.run([sys.executable, __file__, "--run", str(path),
                               "--backend", args.backend], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"import of {path} failed:\n{done.stderr[-3000:]}{done.stdout[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        mb = path.stat().st_size / 2**20
        print(f"  {mb:6.1f}MB {r['rows']:>9,} {r['seconds']:>8.1f} "
              f"{r['rows'] / r['seconds']:>8,.0f} {r['peak_before_mb']:>13.0f} MB "
              f"{r['peak_mb']:>6.0f} MB", flush=True)


if __name__ == "__main__":
    main()
