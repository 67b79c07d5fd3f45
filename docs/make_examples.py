"""Refresh (or check) the example outputs in README.md and docs/guide.md from a fresh demo.

A code block whose line before reads `<!-- demo output -->` (or `<!-- demo output: starfund
demo --years 3 -->`, naming the demo it shows) is an example of what a fresh demo and the
commands after it print. This script runs that demo in a new folder, then each block's
commands (its `$ ...` lines, in one bash, in a copy of that folder, with the demo's database
as STARFUND_DB), and rewrites the block from what they printed now:

- the lines after a `$ ...` line (before the first one: the demo's own) are lines of that
  command's output, in order; a line of dots (`...`, also inside a table's borders) leaves
  lines out and stays as it is;
- every other line is matched, in order, with the next output line of the same shape: its
  words and symbols as written, its numbers any numbers, its runs of spaces (and a table's
  rules) any runs; the output line then replaces it, so counts, totals and sequence numbers
  are always today's;
- `…` in a line stands for what changes from run to run (a duration, the time an event was
  written, a temporary path) and stays `…`.

A line that matches no output line is an error naming the file, the line and the command:
the text around it changed, so the example needs a writer's look. tests/test_docs.py runs
this with --check, so the figures in the docs cannot drift from the demo.

    .venv/bin/python docs/make_examples.py            # rewrite the blocks that are stale
    .venv/bin/python docs/make_examples.py --check    # exit 1 if any is stale, write nothing
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", ROOT / "docs" / "guide.md"]
DEMO = "starfund demo"
DB = "starfund-demo.db"
COLUMNS = 160
"""The terminal width the examples are printed at (rich fits its tables to it)."""
COMMAND = ".venv/bin/python docs/make_examples.py"
BLOCK = re.compile(r"^<!-- demo output(?:: (?P<setup>[^>]*?))? -->\n```(?P<lang>\w*)\n"
                   r"(?P<body>.*?)^```$", re.S | re.M)
NUMBER = re.compile(r"\d+(?:[,.]\d+)*")
BORDERS = " │┃|"
RULES = "━─"
"""A table's rules: as long as its columns are wide."""
VARIES = "…"


class ExampleError(RuntimeError):
    """An example line no output line matches, or a demo that failed."""


@dataclass
class Block:
    path: Path
    start: int            # offset of the block's body in the file
    end: int
    setup: str
    body: str

    @property
    def line(self) -> int:
        return self.path.read_text(encoding="utf-8").count("\n", 0, self.start) + 1


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [Block(path, m.start("body"), m.end("body"), (m.group("setup") or DEMO).strip(),
                  m.group("body")) for m in BLOCK.finditer(text)]


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARFUND_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               COLUMNS=str(COLUMNS), LINES="50", TERM="dumb", NO_COLOR="1",
               STARFUND_CONFIG_DIR=str(folder / "config"), STARFUND_DB=DB)
    return env


def run_demo(setup: str, folder: Path) -> str:
    """Run the demo `setup` in `folder` (new); its output."""
    folder.mkdir(parents=True)
    done = subprocess.run(["bash", "-c", setup], cwd=folder, env=_env(folder), text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise ExampleError(f"`{setup}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


SEP = "\x1e== starfund example command {} ==\x1e"


def run_commands(commands: list[str], demo: Path, folder: Path) -> list[str]:
    """Each command's output (stdout and stderr), run one after another in one bash in a
    copy of the demo's folder."""
    shutil.copytree(demo, folder)
    script = "\n".join(f"printf '%s\\n' '{SEP.format(i)}'\n{c} 2>&1"
                       for i, c in enumerate(commands))
    out = subprocess.run(["bash", "-c", script], cwd=folder, env=_env(folder), text=True,
                         capture_output=True).stdout
    parts = re.split(r"\x1e== starfund example command \d+ ==\x1e\n", out)
    return parts[1:]


def _omitted(line: str) -> bool:
    return line.strip(BORDERS) == "..."


def _pattern(line: str) -> re.Pattern[str]:
    """The shape of an example line: numbers any numbers, space runs any runs, `…` anything;
    each part but the `…` captured, in order."""
    parts = []
    for i, piece in enumerate(line.split(VARIES)):
        if i:
            parts.append(".*?")
        out = []
        for token in re.split(r"(\d+(?:[,.]\d+)*| +|━+|─+)", piece):
            if not token:
                continue
            out.append(NUMBER.pattern if NUMBER.fullmatch(token) else
                       " +" if token.isspace() else
                       f"{token[0]}+" if token[0] in RULES else re.escape(token))
        parts.append("(" + "".join(out) + ")")
    return re.compile("^" + "".join(parts) + " *$")


def _fresh(line: str, output: list[str], at: int) -> tuple[str, int] | None:
    """The example line as the output says it now (and where the match was), or None."""
    pattern = _pattern(line.rstrip())
    indent = len(line) - len(line.lstrip(" "))
    for n in range(at, len(output)):
        got = output[n].rstrip()
        if len(got) - len(got.lstrip(" ")) != indent:
            continue
        m = pattern.match(got)
        if m:
            return VARIES.join(m.groups()), n + 1
    return None


def _sections(body: str) -> Iterator[tuple[str | None, list[str]]]:
    """(command or None for the demo's own output, its example lines), in order."""
    command: str | None = None
    lines: list[str] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            yield command, lines
            command, lines = line[2:], []
        else:
            lines.append(line)
    yield command, lines


def refresh(block: Block, demo_out: str, demo: Path, work: Path) -> str:
    """The block's body as today's demo and commands print it."""
    sections = list(_sections(block.body))
    to_run = [c for c, _ in sections if c is not None and c.strip() != block.setup]
    ran = dict(zip(to_run, run_commands(to_run, demo, work))) if to_run else {}
    out: list[str] = []
    for command, lines in sections:
        if command is not None:
            out.append(f"$ {command}")
        printed = (demo_out if command is None or command.strip() == block.setup
                   else ran.get(command, "")).splitlines()
        at = 0
        for line in lines:
            if _omitted(line) or not line.strip():
                out.append(line)
                continue
            found = _fresh(line, printed, at)
            if found is None:
                where = f"{block.path.relative_to(ROOT)}, the block at line {block.line}"
                raise ExampleError(f"{where}: no line of `{command or block.setup}` matches "
                                   f"{line!r} (after line {at} of its output):\n"
                                   + "\n".join(printed[at:at + 40]))
            text, at = found
            out.append(text)
    return "\n".join(out) + "\n"


def render() -> dict[Path, str]:
    """Every file with demo examples, as it should read now."""
    found = {path: blocks(path) for path in FILES}
    with tempfile.TemporaryDirectory(prefix="starfund-examples-") as tmp:
        demos: dict[str, tuple[Path, str]] = {}
        for setup in dict.fromkeys(b.setup for bs in found.values() for b in bs):
            folder = Path(tmp) / f"demo{len(demos)}"
            demos[setup] = folder, run_demo(setup, folder)
        result = {}
        for path, bs in found.items():
            text, last, parts = path.read_text(encoding="utf-8"), 0, []
            for n, b in enumerate(bs):
                folder, demo_out = demos[b.setup]
                parts += [text[last:b.start],
                          refresh(b, demo_out, folder, Path(tmp) / f"{path.stem}-{n}")]
                last = b.end
            result[path] = "".join(parts) + text[last:]
    return result


def stale() -> list[tuple[Path, str]]:
    """(file, what it should read) for every file whose examples differ from a fresh demo."""
    return [(path, text) for path, text in render().items()
            if path.read_text(encoding="utf-8") != text]


def run(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print("usage: make_examples.py [--check]", file=sys.stderr)
        return 2
    try:
        found = stale()
    except ExampleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path, text in found:
        name = path.relative_to(ROOT)
        if argv:
            print(f"{name}: its demo examples are stale: run `{COMMAND}`", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    if not found:
        print("the demo examples of README.md and docs/guide.md are up to date")
    return 1 if found and argv else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
