"""What a kind of call is, and the registry of kinds (filled by `lifecycle.kinds`).

A kind declares everything about calls of it in one place: its workflow (stages composed
from `states/`), the call-settings sections it reads and its rules on them, its policy for
the rules that read history, its funnel for reports, the portal sections it adds and its
example settings. Code outside a kind's module asks the kind (`of(call.workflow)`), never
compares a workflow's name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifecycle.core.callconfig import CallConfig, Say
from lifecycle.core.errors import NotFound
from states.spec import History
from states.workflows import Workflow, validate


def _same(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _nothing(_call: CallConfig, _say: Say) -> None:
    return None


@dataclass(frozen=True)
class Kind:
    """One kind of call. Its `name` is the value of a call's `workflow` setting and column."""

    name: str
    title: str
    workflow: Workflow
    sections: frozenset[str] = frozenset()
    """The call-settings sections it reads besides the common ones; others are refused."""
    hints: dict[str, str] = field(default_factory=dict)
    """Per section it does not read, what it has instead (said when a call gives it)."""
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = _same
    """What the raw settings imply before validation (a star call: its one category)."""
    rules: tuple[Callable[[CallConfig, Say], None], ...] = ()
    """Its cross-field rules on the parsed settings (`lifecycle.kinds.checks` and its own)."""
    bars: bool = False
    """A failed or terminated project of this kind bars the society from later calls."""
    earns_support: bool = False
    """A top grade in a call of this kind earns steady support in later project calls."""
    counts_for_models: bool = False
    """Its outstanding projects count when a star call names model societies."""
    rates_stars: bool = False
    """It awards star levels and rewards: lists, figures and the portal show stars."""
    funnel: tuple[str, ...] = ()
    """The states the report's funnel counts (applications that ever entered each)."""
    portal: tuple[str, ...] = ()
    """Portal sections the kind offers: "declare_online" (a society declares a draft in the
    portal), "star_sheet" (it fills its self-evaluation sheet online)."""
    example: str = ""
    """Its example call settings (a path under the repository's examples/)."""

    def check(self, call: CallConfig, say: Say) -> None:
        for rule in self.rules:
            rule(call, say)

    def __post_init__(self) -> None:
        if self.name != self.workflow.name:
            raise ValueError(f"kind {self.name}: its workflow is named {self.workflow.name}")


KINDS: dict[str, Kind] = {}
"""The registry, by name: filled by `register` (the kinds that ship: `lifecycle.kinds`)."""


class UnknownKind(NotFound):
    pass


def register(kind: Kind) -> Kind:
    """Add a kind (its workflow validated first: a kind whose graph fails cannot load)."""
    validate(kind.workflow)
    KINDS[kind.name] = kind
    return kind


def of(name: str) -> Kind:
    """The kind of a call by its `workflow` name."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"unknown workflow {name!r} (no kind of call has that name); "
                          f"known: {', '.join(KINDS)}") from None


def rules_of(name: str) -> Kind | str:
    """The kind's settings rules, or what is wrong with the name (for `callconfig`)."""
    try:
        return of(name)
    except UnknownKind as e:
        return str(e)


def all_kinds() -> list[Kind]:
    return list(KINDS.values())


def history() -> History:
    """Which kinds' calls the history rules read (from each kind's declared policy)."""
    return History(bars=tuple(k.name for k in KINDS.values() if k.bars),
                   earns_support=tuple(k.name for k in KINDS.values() if k.earns_support),
                   counts_for_models=tuple(k.name for k in KINDS.values()
                                           if k.counts_for_models))
