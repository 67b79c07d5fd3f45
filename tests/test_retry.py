"""The one retry policy (lifecycle.core.retry) that deadlines and the outbox share; the CLI
tests of both (test_scheduler_run, test_deadlines, test_notify) check it in use."""
from __future__ import annotations

from datetime import datetime, timedelta

from lifecycle.core import retry


def test_backoff_doubles_from_its_base_up_to_its_cap():
    minutes = [retry.DEADLINES.delay(n) / timedelta(minutes=1) for n in range(1, 12)]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]
    assert retry.OUTBOX.with_base(3600).delay(6) == timedelta(days=1)  # 32 h, capped
    assert retry.OUTBOX.with_base(0).delay(3) == timedelta(0)
    at = datetime(2025, 5, 1, 12)
    assert retry.OUTBOX.next_at(at, 3) == datetime(2025, 5, 1, 12, 4)


def test_a_deadline_failing_for_weeks_still_gets_a_time():
    assert retry.DEADLINES.delay(5000) == timedelta(hours=6)  # a timedelta would overflow
