"""How far long work has got: the sink the engine, the verifier and the imports report to.

The work says what it is doing (`step`) and how many rows it has done (`advance`); who
draws it (the command line's bar, `lifecycle.progress_bar`) is above, and nothing here
imports a drawing library. The default, `SILENT`, does nothing, so a caller that watches
nothing (a script, a test, the portal, `--json`) pays a method call per chunk.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

Total = int | Callable[[], int] | None
"""Rows to do: a number, a function giving it (called only by a sink that draws it, so a
count costs nothing when nobody watches), or None when not known in advance."""


class GoingOn:
    """The `total` of a step that goes on counting the rows of the step before it."""

    def __repr__(self) -> str:
        return "GOING_ON"


GOING_ON = GoingOn()


class Progress(Protocol):
    """What long work reports as it goes."""

    def step(self, name: str, total: Total | GoingOn = GOING_ON) -> None:
        """Now doing `name` (a key such as "loading", "deciding", "writing"; the drawing side
        words it in the user's language). Given a `total` (None: not known), the rows are
        counted afresh, from none; without one, the count goes on under the new name."""

    def advance(self, n: int = 1) -> None:
        """`n` more rows done."""


class Silent:
    """The sink that draws nothing: the default of every long function."""

    def step(self, name: str, total: Total | GoingOn = GOING_ON) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


SILENT: Progress = Silent()


_watching: ContextVar[Progress] = ContextVar("starfund_progress", default=SILENT)


@contextmanager
def watching(progress: Progress) -> Iterator[Progress]:
    """Make `progress` the sink of work too deep to be handed one (the rows an import's
    reader reads, `lifecycle.core.tabular`), for the block."""
    token = _watching.set(progress)
    try:
        yield progress
    finally:
        _watching.reset(token)


def current() -> Progress:
    """The sink `watching` set, else SILENT."""
    return _watching.get()


class Recorded:
    """A sink that keeps what it was told, in order (for tests and for checking that work
    reports what it does): ("step", name, total) and ("advance", n) entries."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def step(self, name: str, total: Total | GoingOn = GOING_ON) -> None:
        self.calls.append(("step", name, total() if callable(total) else total))

    def advance(self, n: int = 1) -> None:
        self.calls.append(("advance", n))

    def done(self, step: str | None = None) -> int:
        """Rows reported done (under `step` only, if given)."""
        current, n = None, 0
        for call in self.calls:
            if call[0] == "step":
                current = call[1]
            elif step is None or current == step:
                n += call[1]
        return n
