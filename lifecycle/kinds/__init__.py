"""The kinds of call: the registry, and the one list of the kinds that ship.

A kind is one module (`project`, `star`, `grant`) that declares a `KIND`; anything else may
register one more with `register` (tests/ registers a toy kind). Settings are read with the
kinds through `parse` and `load`, so each call's kind adds its rules and refuses sections it
does not read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lifecycle.core import callconfig
from lifecycle.core.callconfig import CallConfig
from lifecycle.kinds import grant, project, star
from lifecycle.kinds.base import (
    KINDS,
    Kind,
    UnknownKind,
    all_kinds,
    history,
    of,
    register,
    rules_of,
)

__all__ = ["KINDS", "Kind", "UnknownKind", "all_kinds", "history", "of", "register", "rules_of",
           "parse", "load", "BUILT_IN"]

BUILT_IN = (project.KIND, star.KIND, grant.KIND)
"""The kinds that ship, in the order they are listed."""

for _kind in BUILT_IN:
    register(_kind)


def readers(section: str) -> list[str]:
    """The kinds that read a settings section (named when another kind's call gives it)."""
    return [k.name for k in all_kinds() if section in k.sections]


def parse(data: dict[str, Any], source: str = "<call>") -> CallConfig:
    """A call's settings validated with its kind's rules (every bad field named at once)."""
    return callconfig.from_dict(data, source, rules_of, readers)


def load(path: str | Path) -> CallConfig:
    """A call file read and validated with its kind's rules."""
    return callconfig.load(path, rules_of, readers)
