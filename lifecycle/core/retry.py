"""The one retry policy: exponential backoff for work retried from stored rows.

A failed deadline firing and a failed delivery are not retried in-process: the
row records the attempt, the error and `next_attempt_at`, and a later run (or
another worker, after a restart) picks it up when that time comes. So the
policy is a pure function of the attempt count, with "now" from the caller's
clock; a decorator library that retries a call in a loop (tenacity, backoff,
stamina) would sleep in the process and lose its count on a crash, which is
why none is used here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backoff:
    """`base` after the first failure, doubling with each further one, never more than `cap`."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=6)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure (1: base, 2: twice base ...)."""
        # in float seconds: a timedelta doubled forty-odd times overflows (a deadline may fail
        # for weeks), a float only reaches inf, and the cap takes it from there
        seconds = self.base.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 1000)
        return timedelta(seconds=min(seconds, self.cap.total_seconds()))

    def next_at(self, now: datetime, attempts: int) -> datetime:
        """When to try again after the `attempts`-th failure at `now`."""
        return now + self.delay(attempts)

    def with_base(self, seconds: float) -> Backoff:
        """The same cap with another first delay (`--backoff` seconds)."""
        return Backoff(timedelta(seconds=seconds), self.cap)


DEADLINES = Backoff(cap=timedelta(hours=6))
"""A deadline whose effect failed: retried for as long as it takes, at most 6 hours apart."""
OUTBOX = Backoff(cap=timedelta(days=1))
"""A message whose delivery failed for now: at most a day apart, until --max-attempts."""
