"""Write docs/reference.md (every command's `--help`, the settings) and the guide's generated parts.

It walks the click command tree of `cli.main` (every group and command, recursively, in
the order `starfund --help` lists them) and writes each one's help screen, exactly as the
command prints it at a fixed width of 100 columns, in a Markdown code block. Nothing in
the reference is written by hand: to change it, change the command's docstring or options
and run this again. It also refreshes the two `transitions` listings in docs/guide.md
from `starfund workflow show project|star`. tests/test_docs.py fails while either is stale.

    .venv/bin/python docs/make_reference.py            # rewrite what is stale
    .venv/bin/python docs/make_reference.py --check    # exit 1 if anything is stale, write nothing
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))       # run from a checkout that is not installed

import click  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from cli import main  # noqa: E402
from lifecycle.core import settings  # noqa: E402

OUT = ROOT / "docs" / "reference.md"
GUIDE = ROOT / "docs" / "guide.md"
WORKFLOWS = ("project", "star")          # the order of their listings in the guide
LISTING = re.compile(r"```\n(transitions \(first matching wins\):\n.*?)```", re.S)
WIDTH = 100
PROG = "starfund"
COMMAND = ".venv/bin/python docs/make_reference.py"


def _context(cmd: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context `starfund ... NAME --help` would build, at a fixed width, without parsing."""
    settings = dict(cmd.context_settings)
    if parent is None:
        settings.update(terminal_width=WIDTH, max_content_width=WIDTH)
    return click.Context(cmd, info_name=name, parent=parent, **settings)


def walk(cmd: click.Command = main, name: str = PROG,
         parent: click.Context | None = None) -> Iterator[tuple[click.Context, click.Command]]:
    """Every command of the tree, depth first, each with its context (the root first)."""
    ctx = _context(cmd, name, parent)
    yield ctx, cmd
    if isinstance(cmd, click.Group):
        for sub_name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, sub_name, ctx)


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading made of lower-case words and spaces."""
    return title.lower().replace(" ", "-")


def render() -> str:
    """The whole of docs/reference.md as it should read now."""
    entries = [(ctx.command_path, cmd, ctx) for ctx, cmd in walk()]
    lines = [
        "# Command reference",
        "",
        "Every command's help screen, as `starfund ... --help` prints it. Generated from the",
        f"commands themselves by `{COMMAND}`: do not edit by hand",
        "(tests/test_docs.py fails while this file is stale). What the commands are for, and",
        "how they fit together, is in the [guide](guide.md).",
        "",
        "## Contents",
        "",
    ]
    for path, cmd, _ctx in entries:
        depth = len(path.split()) - 1
        summary = cmd.get_short_help_str(limit=80)
        line = f"{'  ' * max(depth - 1, 0)}- [`{path}`](#{_anchor(path)})"
        lines.append(f"{line}: {summary}" if summary and depth else line)
    lines.append("- [Settings](#settings): every STARFUND_* environment variable")
    for path, cmd, ctx in entries:
        help_text = cmd.get_help(ctx).rstrip()
        lines += ["", f"## {path}", "", "```text", *(s.rstrip() for s in help_text.splitlines()),
                  "```"]
    lines += ["", "## Settings", "",
              "Every setting, generated from the model in `lifecycle/core/settings.py`. An option",
              "given on the command line beats the environment variable, which beats the default;",
              "`starfund config show` prints the values in force and where each came from.", "",
              settings.table_markdown()]
    return "\n".join(lines) + "\n"


def transitions(workflow: str) -> str:
    """The transitions part of `starfund workflow show WORKFLOW`, as the command prints it."""
    result = CliRunner().invoke(main, ["workflow", "show", workflow],
                                env={"STARFUND_DB": None, "STARFUND_NOW": None})
    if result.exit_code != 0:
        raise RuntimeError(f"starfund workflow show {workflow} failed: {result.output}")
    out = result.output
    return out[out.index("transitions (first matching wins):"):].rstrip("\n") + "\n"


def guide() -> str:
    """docs/guide.md with its workflow listings as `starfund workflow show` prints them now and
    its table of import columns as the row models describe them."""
    text = GUIDE.read_text(encoding="utf-8")
    listings = list(LISTING.finditer(text))
    if len(listings) != len(WORKFLOWS):
        raise RuntimeError(f"docs/guide.md has {len(listings)} transitions listings, expected "
                           f"{len(WORKFLOWS)} ({', '.join(WORKFLOWS)}, in that order)")
    parts, last = [], 0
    for m, workflow in zip(listings, WORKFLOWS):
        parts += [text[last:m.start(1)], transitions(workflow)]
        last = m.end(1)
    return columns_table("".join(parts) + text[last:])


COLUMNS = re.compile(r"(<!-- columns: generated by docs/make_reference.py from the row models "
                     r"-->\n).*?(\n<!-- /columns -->)", re.S)


def import_kinds() -> list[tuple[str, str, type]]:
    """Every import kind: the file, its command and the row model that reads it."""
    from lifecycle.acts import assessing, declarations, history, registry, scoresheets, stars

    return [("societies", "society import FILE", registry.SocietyRow),
            ("experts", "expert import FILE", registry.ExpertRow),
            ("declarations", "application import CALL FILE", declarations.DeclarationRow),
            ("score sheet, wide (+ one column per criterion id, or its name)",
             "review import CALL FILE", scoresheets.WideScoreRow),
            ("score sheet, long", "review import CALL FILE", scoresheets.LongScoreRow),
            ("assessment grades", "assessment grades CALL FILE", assessing.GradeRow),
            ("star self-evaluation", "star declare CALL FILE", stars.SelfRow),
            ("star checked scores", "star check CALL FILE", stars.CheckRow),
            ("star expert scores", "star review CALL FILE", stars.StarReviewRow),
            ("earlier years", "history import FILE", history.HistoryRow)]


def columns_table(text: str) -> str:
    """The guide with its table of import columns generated from the row models."""
    from lifecycle.core.tabular import columns_markdown

    if not COLUMNS.search(text):
        raise RuntimeError("docs/guide.md has no generated columns table (its markers)")
    table = columns_markdown(import_kinds())
    return COLUMNS.sub(lambda m: m.group(1) + table + m.group(2), text)


def _stale() -> list[tuple[Path, str]]:
    """(file, what it should read) for every generated file that is not up to date."""
    wanted = [(OUT, render()), (GUIDE, guide())]
    return [(path, text) for path, text in wanted
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def run(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print("usage: make_reference.py [--check]", file=sys.stderr)
        return 2
    stale = _stale()
    for path, text in stale:
        name = path.relative_to(ROOT)
        if argv:
            print(f"{name} is stale: run `{COMMAND}`", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    if not stale:
        print("docs/reference.md and the guide's workflow listings are up to date")
    return 1 if stale and argv else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
