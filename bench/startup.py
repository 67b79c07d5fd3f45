"""Start-up time of the command line: `starfund --help` against a bare `python -c pass`.

Each run is a whole new process (what a user waits for), started the way the
installed `starfund` script starts: `from cli import main; sys.exit(main())`,
with the tree under test first on PYTHONPATH. Prints the median of N runs of
each, and their ratio. It also says whether `--help` imported Alembic, the ORM
or rich (it must not: a help screen needs only click).

    .venv/bin/python bench/startup.py                   # this checkout, 30 runs each
    .venv/bin/python bench/startup.py --root /tmp/old   # another tree (e.g. `git archive HEAD`)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from cli import main; sys.exit(main())"  # what the `starfund` script runs
HEAVY = ("alembic", "sqlalchemy.orm", "sqlalchemy", "rich", "pydantic", "openpyxl", "jinja2",
         "apscheduler", "transitions")
PROBE = ("import sys, json\n"
         "sys.argv = ['starfund', '--help']\n"
         "try:\n"
         "    from cli import main; main()\n"
         "except SystemExit:\n"
         "    pass\n"
         f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n")


def _time(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=ROOT, help="The tree whose cli.py is measured.")
    p.add_argument("--runs", type=int, default=30, help="Processes per measurement.")
    p.add_argument("--python", default=sys.executable, help="The interpreter (the venv's).")
    a = p.parse_args()
    root = a.root.resolve()  # `python -c` puts the working folder first on sys.path: run there
    env = {**os.environ, "PYTHONPATH": str(root)}
    # warm the OS caches and the .pyc files once, then measure
    subprocess.run([a.python, "-c", ENTRY, "--help"], env=env, cwd=root, check=True,
                   stdout=subprocess.DEVNULL)
    bare = _time([a.python, "-c", "pass"], env, root, a.runs)
    helps = _time([a.python, "-c", ENTRY, "--help"], env, root, a.runs)
    probe = subprocess.run([a.python, "-c", PROBE], env=env, cwd=root, check=True,
                           capture_output=True, text=True)
    loaded = json.loads(probe.stderr.strip().splitlines()[-1])
    b, h = statistics.median(bare), statistics.median(helps)
    print(f"tree: {root}  ({a.runs} runs each, medians)")
    print(f"python -c pass   {b:.3f} s")
    print(f"starfund --help  {h:.3f} s   ({h / b:.1f}x a bare start, {h - b:.3f} s of our own)")
    print("imported by --help: " + (", ".join(loaded) or "none of " + ", ".join(HEAVY)))


if __name__ == "__main__":
    main()
