"""Shrinking lifetimes (6-day shortlived, 45-day tlsserver, 64/45-day classic) against the twice-daily timer.

The schedule is read from the timer and cron files lehttpd installs (two slots a day, each run delayed by a
random time up to 12 h); the renewal decision is the real one. Pure functions, no clock.
"""
from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from lehttpd.renew.timer import cron_text, timer_text
from lehttpd.renewal import decide, renewal_time

UTC = dt.timezone.utc


def schedule() -> tuple[tuple[int, ...], dt.timedelta]:
    """(slot hours, random delay) as the systemd timer states them; the cron file must agree."""
    text = timer_text()
    hours = tuple(int(h) for h in re.search(r"OnCalendar=\*-\*-\* ([\d,]+):00:00", text).group(1).split(","))
    spread = dt.timedelta(hours=int(re.search(r"RandomizedDelaySec=(\d+)h", text).group(1)))
    cron = cron_text("lehttpd renew")
    assert re.search(r"^0 \*/12 \* \* \*", cron, re.M) and "shuf -i 0-43199" in cron  # same slots, same spread
    return hours, spread


def runs(start: dt.datetime, end: dt.datetime, delay) -> list[dt.datetime]:
    """Every timer run between start and end; delay(slot) -> fraction of the spread for that slot's run."""
    hours, spread = schedule()
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    found = []
    while day < end:
        for hour in hours:
            slot = day + dt.timedelta(hours=hour)
            when = slot + spread * delay(slot)
            if start <= when < end:
                found.append(when)
        day += dt.timedelta(days=1)
    return sorted(found)


def first_attempt(not_before: dt.datetime, not_after: dt.datetime, delay) -> dt.datetime:
    for when in runs(not_before, not_after + dt.timedelta(days=2), delay):
        if decide(not_before, not_after, when).due:
            return when
    raise AssertionError("never renewed")


def adversary(due: dt.datetime):
    """The worst delays: the run of the half-day holding `due` comes just before it, every later one late."""
    return lambda slot: 0.0 if slot <= due else 0.999


@pytest.mark.parametrize("issued_at_minute", range(0, 24 * 60, 37))
def test_a_six_day_certificate_is_renewed_with_two_days_left_at_worst(issued_at_minute):
    not_before = dt.datetime(2026, 11, 2, tzinfo=UTC) + dt.timedelta(minutes=issued_at_minute)
    not_after = not_before + dt.timedelta(days=6)
    due = renewal_time(not_before, not_after)
    assert due == not_before + dt.timedelta(days=3)  # half-way for lifetimes under 10 days
    attempt = first_attempt(not_before, not_after, adversary(due))
    assert attempt - due <= dt.timedelta(hours=24)
    assert not_after - attempt >= dt.timedelta(days=2)
    # and if that attempt fails, at least two more runs come before expiry
    assert len([r for r in runs(attempt, not_after, adversary(due)) if r > attempt]) >= 2


def test_a_six_day_certificate_with_random_delays_is_always_renewed_well_before_expiry():
    rng = random.Random(9)
    for _ in range(2000):
        not_before = dt.datetime(2026, 11, 2, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(86400 * 7))
        not_after = not_before + dt.timedelta(days=6)
        delays: dict[dt.datetime, float] = {}
        attempt = first_attempt(not_before, not_after, lambda slot: delays.setdefault(slot, rng.random()))
        assert not_after - attempt > dt.timedelta(days=2)


@pytest.mark.parametrize("days", [45, 64, 90])
def test_longer_lifetimes_renew_a_third_before_expiry(days):
    not_before = dt.datetime(2027, 2, 10, tzinfo=UTC)
    not_after = not_before + dt.timedelta(days=days)
    due = renewal_time(not_before, not_after)
    assert due == not_after - dt.timedelta(days=days) / 3
    attempt = first_attempt(not_before, not_after, adversary(due))
    assert not_after - attempt >= dt.timedelta(days=days) / 3 - dt.timedelta(hours=24)
