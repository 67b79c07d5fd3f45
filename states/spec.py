"""The typed records every stage table is made of.

A stage module holds two short tables, STATES and MOVES, and the named
condition functions they use. The engine (`lifecycle.core.engine`) reads these
records; nothing in `states/` touches the database except the `prepare`
loaders, which load related data for a whole batch in one query each.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lifecycle.core.callconfig import CallConfig


@dataclass
class Context:
    """What conditions may look at besides the application: the call, now, and batch-loaded data."""

    call: "CallConfig"
    now: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per application id: column values to write if the application moves (e.g. score, rank)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options given with this advance (e.g. an override reason)."""


class App(Protocol):
    """The loaded row a condition sees (an application joined with its society)."""

    id: str
    call_id: str
    society_id: str
    category: str
    state: str
    requested_amount: int


Condition = Callable[[Any, Context], "str | None"]
"""A named check: returns None when it holds, else the reason (shown when skipping)."""

Prepare = Callable[["Connection", Context, list[Any]], None]
"""Loads or computes, for the whole batch at once, what the conditions and updates need."""

DueAt = Callable[["CallConfig", datetime], datetime]
"""Computes a deadline's time from the call's calendar and the moment the state is entered."""

Effect = Callable[["Connection", Context, list[Any]], None]
"""Writes what a move entails besides the state (payments, star records), for the moved batch,
in the same transaction, after the states are saved; it audits what it writes."""


@dataclass(frozen=True)
class Notify:
    """A message sent when an application enters a state."""

    kind: str
    to: str = "society"  # "society" or "experts" (the application's assigned experts)


@dataclass(frozen=True)
class Schedule:
    """A deadline written when an application enters a state."""

    kind: str
    due: DueAt
    fires: str
    action: str = "advance"  # "advance": fire the trigger; "remind": send reminders
    per: str | None = None
    """An application value (e.g. "checkpoint") the deadline is per: the kind becomes
    `kind:value` and `due` is called as due(call, entered, value)."""


@dataclass(frozen=True)
class State:
    name: str
    label: str
    notify: tuple[Notify, ...] = ()
    schedule: tuple[Schedule, ...] = ()
    final: bool = False


ADMIN = "admin"
SCHEDULER = "scheduler"


@dataclass(frozen=True)
class Move:
    """One transition: `trigger` takes an application from any of `sources` to `dest`.

    Several moves may share a trigger and a source; the first whose conditions
    all hold is taken (so a fallback move with no conditions comes last).
    """

    trigger: str
    sources: tuple[str, ...]
    dest: str
    conditions: tuple[Condition, ...] = ()
    who: tuple[str, ...] = (ADMIN,)
    prepare: tuple[Prepare, ...] = ()
    help: str = ""
    effects: tuple[Effect, ...] = ()
