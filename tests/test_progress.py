"""Progress on long work: drawn on a terminal, never on a pipe, with --json or --quiet; Ctrl-C.

The commands run as real processes. "A terminal" is a pseudo-terminal (python's pty
module) on standard error, as `script -qc` gives one; "a pipe" is what a script sees.
What the bar shows is checked on its last frame, drawn when the work ends (rich redraws
the bar once as it stops, whatever the timing), so nothing here waits on a clock.
The engine and the verifier report to a `lifecycle.core.progress` sink from the work
itself: a recording sink checks the rows and steps they report.
"""
from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess

from processes import command, finish
from test_faults import CHUNK, wait_paused
from worlds import CALL, Cli, declared_batch, fingerprint, societies, write_csv

from lifecycle.core import audit, clock, db
from lifecycle.core.progress import Recorded
from lifecycle.engine import engine
from notifications import channels, delivery

N = 500
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def run_in_pty(db_url: str, *args: str, env_extra: dict[str, str] | None = None,
               now: str = "2025-04-08T09:00") -> tuple[int, str, str]:
    """`starfund ARGS` with standard error on a pseudo-terminal (stdout piped): (exit code,
    stdout, what the terminal showed, escape sequences removed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160", **(env_extra or {})}
    proc = subprocess.Popen(command(db_url, *args, now=now), stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    shown = bytearray()
    while True:  # read the terminal until the process closes it (bounded by the select)
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError("the command drew nothing for 120 s")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not data:
            break
        shown += data
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=120), out, ANSI.sub("\n", shown.decode("utf-8", "replace"))


def test_advance_on_a_terminal_draws_its_progress_and_a_pipe_sees_none(founded_db_url,
                                                                        tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, N)
    dry_code, dry_out, dry_shown = run_in_pty(founded_db_url, "advance", CALL,
                                              "close_declaration", "--dry-run")
    assert dry_code == 0 and "would move" in dry_out
    assert f"{N}/{N}" in dry_shown, dry_shown   # a dry run shows its progress too
    piped = subprocess.run(command(founded_db_url, "advance", CALL, "close_declaration",
                                   "--dry-run"), capture_output=True, text=True,
                           env={**os.environ, "TERM": "xterm"})
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr   # a pipe: no bar
    assert piped.stdout == dry_out                     # and the same summary
    code, out, shown = run_in_pty(founded_db_url, "advance", CALL, "close_declaration",
                                  env_extra={"STARFUND_FAULT_CHUNK_ROWS": str(CHUNK)})
    assert code == 0, shown
    assert f"{CALL} close_declaration" in shown and f"{N}/{N}" in shown, shown
    assert "rows/s" not in out and "━" not in out       # the bar is on the terminal only
    assert re.search(r"moved \d+, skipped \d+", out)      # the summary, unchanged, on stdout

    piped = subprocess.run(command(founded_db_url, "advance", CALL, "start_review",
                                   "--dry-run"), capture_output=True, text=True,
                           env={**os.environ, "TERM": "xterm"})
    # every candidate refused (no experts assigned): exit 3, the report as ever, no bar
    assert piped.returncode == 3 and piped.stderr == "", piped.stderr
    assert "would move 0" in piped.stdout


def test_no_progress_with_json_or_quiet_even_on_a_terminal(founded_db_url, tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, 50)
    code, out, shown = run_in_pty(founded_db_url, "advance", CALL, "close_declaration",
                                  "--dry-run", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True
    assert shown.strip() == "", shown
    code, out, shown = run_in_pty(founded_db_url, "advance", CALL, "close_declaration",
                                  "--dry-run", "--quiet")
    assert code == 0 and "would move" in out and shown.strip() == "", shown
    code, out, shown = run_in_pty(founded_db_url, "audit", "verify",
                                  env_extra={"STARFUND_QUIET": "1"})
    assert code == 0 and "audit chain intact" in out and shown.strip() == "", shown
    code, out, shown = run_in_pty(founded_db_url, "audit", "verify")
    assert code == 0 and "verifying the chain" in shown, shown


def test_a_piped_advance_prints_what_it_printed_before(founded_db_url, tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, 50)
    code, out, err = finish(subprocess.Popen(
        command(founded_db_url, "advance", CALL, "close_declaration"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TERM": "xterm"}))
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"{CALL} close_declaration: moved ")


def test_ctrl_c_inside_an_advance_rolls_it_back_says_so_and_exits_130(founded_db_url,
                                                                      tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, N)
    before = fingerprint(founded_db_url)
    marker = tmp_path / "paused"
    env = {**os.environ, "STARFUND_FAULT_PAUSE_AFTER_ROWS": str(2 * CHUNK + 1),
           "STARFUND_FAULT_CHUNK_ROWS": str(CHUNK), "STARFUND_FAULT_MARKER": str(marker),
           "STARFUND_FAULT_PAUSE_SECONDS": "120"}
    # SIGINT as a terminal's Ctrl-C delivers it, even when this suite runs in the background
    # (a shell's background job starts with SIGINT ignored, and a child inherits that)
    proc = subprocess.Popen(command(founded_db_url, "advance", CALL, "close_declaration"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_paused(proc, marker)                 # inside the batch's writes, chunks written
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc, timeout=60)
    assert code == 130, err
    lines = [x for x in err.splitlines() if not x.startswith("starfund fault hook")]
    assert lines == [f"interrupted: {CALL} close_declaration: nothing was written (the "
                     "batch's transaction was rolled back: it moves whole or not at all)"], err
    assert out == ""
    assert fingerprint(founded_db_url) == before
    assert "audit chain intact" in cli("audit", "verify").output
    assert "moved" in cli("advance", CALL, "close_declaration").output


def test_the_engine_and_the_verifier_report_their_rows_from_the_work(founded_db_url,
                                                                     tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, N)
    e = db.make_engine(founded_db_url)
    clock.set_now(clock.parse("2025-04-08T09:00"))
    seen = Recorded()
    with e.begin() as conn:
        report = engine.advance(conn, CALL, "close_declaration", "admin-test", dry_run=True,
                                progress=seen)
    assert ("step", "loading", N) in seen.calls
    assert seen.done() == N == report.moved_total + report.skipped_total
    assert [c[1] for c in seen.calls if c[0] == "step"][-1] == "scheduling"
    checked = Recorded()
    with db.reading(e) as conn:
        result = audit.check(conn, audit.chain_key(conn), batch=100, progress=checked)
    assert result.ok
    assert checked.calls[0] == ("step", "verifying", result.checked)
    assert checked.done("verifying") == result.checked
    assert sum(1 for c in checked.calls if c[0] == "advance") == -(-result.checked // 100)
    e.dispose()


def test_an_import_on_a_terminal_draws_the_rows_it_reads(founded_db_url, tmp_path):
    rows = societies(300)
    path = write_csv(tmp_path / "soc.csv", rows)
    code, out, shown = run_in_pty(founded_db_url, "society", "import", str(path),
                                  now="2025-02-01")
    assert code == 0 and out.strip() == "societies: 300 created, 0 updated", out
    assert "society import soc.csv" in shown and "300/300" in shown, shown
    code, out, shown = run_in_pty(founded_db_url, "society", "import", str(path), "--quiet",
                                  now="2025-02-01")
    assert code == 0 and "300 updated" in out and shown.strip() == "", shown


def test_notify_send_reports_each_message_of_those_due(founded_db_url, tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, 40)
    e = db.make_engine(founded_db_url)
    clock.set_now(clock.parse("2025-04-08T09:00"))
    due = delivery.due(e, clock.now())
    assert due > 0
    seen = Recorded()
    report = delivery.drain(e, channels.make(kind="file", outbox=str(tmp_path / "out")),
                            progress=seen)
    assert seen.calls[0] == ("step", "sending", due)
    assert seen.done("sending") == due == report.sent
    e.dispose()


def test_a_years_report_draws_its_progress_in_chinese_and_a_pipe_sees_none(founded_db_url,
                                                                            tmp_path):
    cli = Cli(founded_db_url)
    declared_batch(cli, tmp_path, 50)
    code, out, shown = run_in_pty(founded_db_url, "report", "--year", "2025", "--lang", "zh",
                                  "--html", str(tmp_path / "r.html"))
    assert code == 0 and "生成报告" in shown, shown      # the report speaks Chinese: so does its bar
    piped = subprocess.run(command(founded_db_url, "report", "--year", "2025", "--html",
                                   str(tmp_path / "r2.html")), capture_output=True, text=True,
                           env={**os.environ, "TERM": "xterm"})
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
