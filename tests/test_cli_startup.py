"""The command line starts fast: `starfund --help` imports no command module, and what it lists
(the registry's one-liners in cli.py) cannot drift from the commands themselves.

Timing is measured by bench/startup.py, never asserted here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent


def _loaded() -> dict[str, click.Command]:
    ctx = click.Context(main, info_name="starfund")
    return {name: main.get_command(ctx, name) for name in main.list_commands(ctx)}


def test_each_registered_one_liner_is_the_commands_own_short_help():
    for name, cmd in _loaded().items():
        assert isinstance(cmd, click.Command), f"{name}: {COMMANDS[name][0]} is not a command"
        assert cmd.name == name, f"{COMMANDS[name][0]} is named {cmd.name!r}, registered as {name!r}"
        assert cmd.get_short_help_str(10**6) == COMMANDS[name][1], (
            f"the one-liner of {name!r} in cli.COMMANDS differs from its docstring's first sentence")


def test_lazy_help_is_the_help_of_the_commands_themselves():
    """`starfund --help` from the registry prints exactly what a group holding the loaded
    commands would print (names, order, one-liners and their shortening)."""
    eager = click.Group(name=main.name, commands=_loaded(), params=main.params, help=main.help,
                        context_settings=main.context_settings, callback=main.callback)
    lazy_help = CliRunner().invoke(main, ["--help"]).output
    assert lazy_help == CliRunner().invoke(eager, ["--help"]).output
    assert all(f"  {name} " in lazy_help for name in COMMANDS)


def test_help_imports_no_command_module_nor_the_database_or_table_libraries():
    probe = ("import sys, json\n"
             "from cli import main\n"
             "try:\n"
             "    main(['--help'])\n"
             "except SystemExit:\n"
             "    pass\n"
             "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "advance" in r.stdout and "objection" in r.stdout
    modules = json.loads(r.stderr.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in
             ("alembic", "sqlalchemy", "rich", "pydantic", "openpyxl", "jinja2", "apscheduler",
              "transitions", "states", "notifications")
             or (m.startswith("lifecycle.") and m not in
                 ("lifecycle.core", "lifecycle.console", "lifecycle.core.clock",
                  "lifecycle.core.errors", "lifecycle.core.names"))]
    assert not heavy, f"`starfund --help` imported {heavy}"
