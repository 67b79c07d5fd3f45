"""The typed records every stage table is made of.

A stage module holds two short tables, STATES and MOVES, the named functions
they use (conditions, which only check; decide functions, which compute what a
move writes; loaders; effects) and the named state sets the acts use (the names
themselves are spelled once, in `states.names`). The engine
(`lifecycle.engine.engine`) reads these records; nothing in `states/` touches the
database except the loaders (`prepare`: for a whole batch, `prepare_chunk`: for
a chunk of it), which load related data in one query each, and the effects.
`states.workflows.validate` checks the graph the tables make.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lifecycle.core.callconfig import CallConfig


@dataclass(frozen=True)
class History:
    """Which kinds of call the rules that read history look at, from each kind's policy
    (`lifecycle.kinds.history`): the engine gives it to every batch in its Context."""

    bars: tuple[str, ...] = ()
    """Kinds whose failed or terminated projects bar the society from later calls."""
    earns_support: tuple[str, ...] = ()
    """Kinds whose top grades earn steady support."""
    counts_for_models: tuple[str, ...] = ()
    """Kinds whose projects count when model societies are named."""


@dataclass
class Context:
    """What conditions may look at besides the application: the call, now, and batch-loaded data."""

    call: "CallConfig"
    now: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per moved application id: the column values its move's `decide` functions returned
    (e.g. score, rank). Filled by the engine only, after all the move's conditions held;
    effects read it. Conditions never write it (nor anything else)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options given with this advance (e.g. an override reason)."""
    history: History = field(default_factory=History)
    """Which kinds' calls count for the history rules (bars, steady support, models)."""


class App(Protocol):
    """The loaded row a condition sees (an application joined with its society)."""

    id: str
    call_id: str
    society_id: str
    category: str
    state: str
    requested_amount: int


Condition = Callable[[Any, Context], "str | None"]
"""A named check: returns None when it holds, else the reason (shown when skipping).
Pure: it reads the application and the context and writes nothing, so the order of a
move's conditions never matters."""

Decide = Callable[[Any, Context], dict[str, Any]]
"""What a move decides for one application (score, rank, star level, cut, outcome amounts):
returns the column values to write with the new state. Run by the engine only once all the
move's conditions hold; a decide may also note, in ctx.data, what later applications of the
same batch must see (e.g. the (society, category) a declaration takes)."""

Prepare = Callable[["Connection", Context, "Batch"], None]
"""Loads or computes, for the whole batch at once, what the conditions and updates need.
It is given the batch, not its rows: better one query that asks the database for what the
whole batch needs (a count per society, a budget left) than a pass over the candidates."""


class Batch(Protocol):
    """The candidates of an advance (lifecycle.engine.engine.Batch): read again from the
    database, a chunk at a time, each time it is iterated; never held as a list."""

    call_id: str
    states: list[str]

    def __iter__(self) -> Any: ...

    def ids(self) -> Any: ...

PrepareChunk = Callable[["Connection", Context, list[Any]], None]
"""Loads, for one chunk of the batch (its rows), what its conditions need (`Move.prepare_chunk`)."""

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



@dataclass(frozen=True)
class Move:
    """One transition: `trigger` takes an application from any of `sources` to `dest`.

    Several moves may share a trigger and a source; the first whose conditions
    all hold is taken (so a fallback move with no conditions comes last). The
    conditions only check; `decide` then computes what the taken move writes.
    """

    trigger: str
    sources: tuple[str, ...]
    dest: str
    conditions: tuple[Condition, ...] = ()
    who: tuple[str, ...] = ()
    """The roles (states.roles) that may fire it; `workflows.validate` refuses a move without."""
    prepare: tuple[Prepare, ...] = ()
    prepare_chunk: tuple[PrepareChunk, ...] = ()
    """Run before each chunk of the batch is decided, given the chunk's rows: for what a
    condition needs of the whole batch that earlier chunks changed in the database (the
    declarations a society holds, counting those this batch's earlier chunks took), so
    nothing about every application of the batch is kept in memory."""
    help: str = ""
    effects: tuple[Effect, ...] = ()
    decide: tuple[Decide, ...] = ()
    """Run in order once all conditions hold; their results are merged (later wins) into
    the column values written with the state (`Context.updates`)."""
    any_society: bool = False
    """A society's account may fire it on another society's application (an objection
    during the public notice); otherwise a society moves only its own."""
