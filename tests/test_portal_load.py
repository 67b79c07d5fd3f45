"""bench/portal_load.py works (a bench, not a timed test): its seeding, `starfund serve` as a
child process, a run of a few people, and the database check after it."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from databases import backend

BENCH = Path(__file__).resolve().parent.parent / "bench" / "portal_load.py"


def test_a_small_load_run_records_every_accepted_score_once(capsys):
    spec = importlib.util.spec_from_file_location("portal_load", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    rows = bench.main(["--backend", backend(), "--workers", "1", "--experts", "3",
                       "--societies", "1", "--apps-per-society", "3",
                       "--per-application", "1", "--think", "0", "--ramp", "0"])
    assert len(rows) == 1, capsys.readouterr().out
    r = rows[0]
    assert (r["errors"], r["accepted"], r["submitted"], r["events"]) == (0, 3, 3, 3), r
    assert r["exactly_once"] and r["chain"], r
