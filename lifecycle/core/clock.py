"""The one source of "now".

Everything that needs the time asks `clock.now()`. Tests, the demo and the
`--now` option move time explicitly with `set_now`/`advance`, so nothing ever
sleeps and a whole programme year runs in seconds. Times are naive datetimes in
the programme's local time zone (STARFUND_TZ, default Asia/Shanghai), which is
how calls publish their calendars.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from lifecycle.core.errors import BadValue

_frozen: datetime | None = None
_zone_name = "Asia/Shanghai"
ACCEPTED = ("an ISO 8601 date or date-time such as 2025-04-07 or 2025-04-07T17:00 "
            "(seconds and a UTC offset such as +08:00 optional)")


def use_zone(name: str) -> None:
    """Set the programme's time zone (the command line passes STARFUND_TZ from its settings);
    a name that is not one is the user's error, and the zone stays as it was."""
    global _zone_name
    before, _zone_name = _zone_name, name
    try:
        zone()
    except BadValue:
        _zone_name = before
        raise


def zone() -> ZoneInfo:
    """The programme's time zone (default Asia/Shanghai, see `use_zone`)."""
    name = _zone_name
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError) as e:  # ZoneInfoNotFoundError is a KeyError
        raise BadValue(f"STARFUND_TZ={name!r} is not a time zone ({type(e).__name__}); "
                       "accepted: an IANA name such as Asia/Shanghai or UTC") from None


_zone = zone  # the name other modules use


def now() -> datetime:
    """The current programme time: the frozen time if set (--now or STARFUND_NOW freeze it for
    a command), else the wall clock."""
    if _frozen is not None:
        return _frozen
    return wall()


def wall() -> datetime:
    """The real time, never frozen nor set: when an audit event is written (beside the programme
    time it speaks for, which a simulation moves)."""
    return datetime.now(_zone()).replace(tzinfo=None, microsecond=0)


def epoch() -> float:
    """The real time in seconds since 1970 UTC, never frozen: what one-time codes count in."""
    return datetime.now(UTC).timestamp()


def simulated() -> bool:
    """Whether "now" is not the real time (frozen: --now, STARFUND_NOW, a test or the demo):
    refused on a live database."""
    return _frozen is not None


def parse(text: str) -> datetime:
    """Parse an ISO date or datetime as programme-local naive time.

    A malformed or impossible time (`garbage`, `2026-05-00T10:00`) raises BadValue
    naming the value, what is wrong with it, and the accepted form.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except (ValueError, TypeError, AttributeError) as e:
        raise BadValue(f"{text!r} is not a valid time ({e}); accepted: {ACCEPTED}") from None
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
