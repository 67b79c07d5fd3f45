"""The one source of "now".

Everything that needs the time asks `clock.now()`. Tests, the demo and the
`--now` option move time explicitly with `set_now`/`advance`, so nothing ever
sleeps and a whole programme year runs in seconds. Times are naive datetimes in
the programme's local time zone (STARFUND_TZ, default Asia/Shanghai), which is
how calls publish their calendars.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_frozen: datetime | None = None


def _zone() -> ZoneInfo:
    return ZoneInfo(os.environ.get("STARFUND_TZ", "Asia/Shanghai"))


def now() -> datetime:
    """The current programme time: the frozen time if set, else STARFUND_NOW, else the wall clock."""
    if _frozen is not None:
        return _frozen
    env = os.environ.get("STARFUND_NOW")
    if env:
        return parse(env)
    return datetime.now(_zone()).replace(tzinfo=None, microsecond=0)


def parse(text: str) -> datetime:
    """Parse an ISO date or datetime as programme-local naive time."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is not None:
        value = value.astimezone(_zone()).replace(tzinfo=None)
    return value


def set_now(value: datetime | str | None) -> None:
    """Freeze the clock at `value` (None returns to the wall clock)."""
    global _frozen
    _frozen = parse(value) if isinstance(value, str) else value


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward; the demo and tests use this instead of sleeping."""
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock: call set_now() first")
    set_now(_frozen + delta)
    return _frozen


@contextmanager
def frozen(value: datetime | str) -> Iterator[None]:
    """Freeze the clock for a block, restoring what was there before."""
    before = _frozen
    set_now(value)
    try:
        yield
    finally:
        set_now(before)
