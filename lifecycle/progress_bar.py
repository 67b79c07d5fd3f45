"""The command line's progress bar: draws what long work reports (`lifecycle.core.progress`).

The command line's side, beside `console.py` (which uses it): the engine, the verifier and the imports
only call a `Progress` sink; this module gives a command the sink to pass them, drawn
with rich on standard error (the step, rows done of rows to do, the rate and the time
left, in English or, with `lang="zh"`, in Chinese), or the silent one when standard
error is not a terminal, with --json or with --quiet, so a script sees exactly what it
saw before. The bar is gone when the command ends (its summary is printed after it).

A Ctrl-C inside `shown` is said in one line once the work under it has unwound (its
transaction rolled back), exit 130.
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from lifecycle.core.names import printable
from lifecycle.core.progress import GOING_ON, SILENT, GoingOn, Progress, Total

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

LABELS: dict[str, tuple[str, str]] = {  # step -> (Chinese, English)
    "loading": ("读取", "loading"),
    "preparing": ("准备", "preparing"),
    "deciding": ("判定", "deciding"),
    "writing": ("写入", "writing"),
    "scheduling": ("写入截止事件", "scheduling deadlines"),
    "verifying": ("校验审计链", "verifying the chain"),
    "comparing": ("核对申报项目", "comparing with the applications"),
    "reading": ("读取文件", "reading the file"),
    "importing": ("导入", "importing"),
    "sending": ("发送", "sending"),
    "firing": ("触发截止事件", "firing deadlines"),
    "simulating": ("模拟", "simulating"),
    "reporting": ("生成报告", "reporting"),
}
WORDS = {"zh": {"per_second": "行/秒", "left": "剩余 {}"},
         "en": {"per_second": "rows/s", "left": "{} left"}}


def label(step: str, lang: str = "en") -> str:
    """A step's words in `lang` (zh or en); an unknown step as it is named."""
    zh, en = LABELS.get(step, (step, step))
    return zh if lang == "zh" else en


def drawn(env: Any) -> bool:
    """Whether a command's progress is drawn: standard error is a terminal (not dumb), and
    neither --json nor --quiet was asked for."""
    if getattr(env, "as_json", False) or getattr(env, "quiet", False):
        return False
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def shown(env: Any, what: str, lang: str = "en",
          interrupted: str = "nothing was written (its transaction was rolled back)"
          ) -> Iterator[Progress]:
    """The sink a long command passes to its work: a bar titled `what` when `drawn(env)`,
    else the silent one. A Ctrl-C in the work ends the command with one line,
    "interrupted: `interrupted`", exit 130: open the work's transaction inside this block,
    so that it has rolled back when the line is said."""
    try:
        if not drawn(env):
            yield SILENT
        else:
            with _bar(what, lang) as bar:
                yield bar
    except KeyboardInterrupt:
        click.echo(printable(f"interrupted: {what}: {interrupted}"), err=True)
        sys.exit(INTERRUPTED_EXIT)


@contextmanager
def _bar(what: str, lang: str) -> Iterator[Progress]:
    from rich.console import Console  # inside: rich only when a bar is drawn
    from rich.progress import BarColumn, SpinnerColumn, TextColumn
    from rich.progress import Progress as Rich

    rows, rate, left = _columns()
    words = WORDS["zh" if lang == "zh" else "en"]
    console = Console(file=sys.stderr, highlight=False)
    rich = Rich(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=10),
                rows(words), rate(words), left(words), console=console, transient=True,
                refresh_per_second=4, redirect_stdout=sys.stdout.isatty(),
                redirect_stderr=False)
    with rich:
        yield _Sink(rich, what, lang)


class _Sink:
    """A `Progress` drawn as one rich task; a step with a total starts a fresh task (so its
    rate and time left are its own)."""

    def __init__(self, rich: Any, what: str, lang: str) -> None:
        self.rich, self.what, self.lang = rich, what, lang
        self.task = rich.add_task(what, total=None)

    def step(self, name: str, total: Total | GoingOn = GOING_ON) -> None:
        description = label(name, self.lang)
        if isinstance(total, GoingOn):
            self.rich.update(self.task, description=description)
            return
        self.rich.remove_task(self.task)
        self.task = self.rich.add_task(description, total=total() if callable(total) else total)

    def advance(self, n: int = 1) -> None:
        self.rich.advance(self.task, n)


@functools.cache
def _columns() -> tuple[type, ...]:
    """The columns rich lacks (rows, not bytes; the words in the user's language), made when
    a bar is first drawn; short, so that the bar fits an 80-column terminal."""
    from rich.progress import ProgressColumn  # inside: rich only when a bar is drawn
    from rich.text import Text

    class Rows(ProgressColumn):
        """Rows done of rows to do."""

        def __init__(self, words: dict[str, str]) -> None:
            super().__init__()
            self.words = words

        def render(self, task: Any) -> Any:
            total = "?" if task.total is None else f"{int(task.total):,}"
            return Text(f"{int(task.completed):,}/{total}")

    class Rate(Rows):
        """Rows a second, over the last half minute."""

        def render(self, task: Any) -> Any:
            speed = task.finished_speed or task.speed
            return Text("" if not speed else f"{speed:,.0f} {self.words['per_second']}")

    class Left(Rows):
        """The time left, once the rate and the rows to do are known."""

        def render(self, task: Any) -> Any:
            seconds = task.time_remaining
            if seconds is None or not task.total:
                return Text("")
            h, rest = divmod(int(seconds), 3600)
            shown = f"{h}:{rest // 60:02d}:{rest % 60:02d}"
            return Text(self.words["left"].format(shown))

    return Rows, Rate, Left
