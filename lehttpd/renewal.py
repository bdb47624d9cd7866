"""When is a lineage due? Pure decisions, tested on their own: no clock, no disk, no network, no randomness.

Callers pass `now` and, where a random point is needed, a `fraction` drawn from [0, 1).

- Without renewal information: due when a third of the lifetime is left (half when it lasts under 10 days).
- With ACME Renewal Information (RFC 9773): due from a random point inside the window the CA suggests;
  a window already over means "renew now".
- After failures: back-off, so a broken lineage run from cron does not hammer the CA.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SHORT_LIFETIME = dt.timedelta(days=10)

# Back-off after consecutive failures: the first failure is retried by the next run; from the second on the
# wait doubles from BACKOFF_BASE up to BACKOFF_MAX, with +-BACKOFF_JITTER so that fleets spread out.
BACKOFF_BASE = dt.timedelta(hours=1)
BACKOFF_MAX = dt.timedelta(hours=24)
BACKOFF_JITTER = 0.25


def renewal_time(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """The moment from which a certificate is due: a third of its lifetime left (half under 10 days)."""
    lifetime = not_after - not_before
    fraction = 1 / 2 if lifetime < SHORT_LIFETIME else 1 / 3
    return not_after - lifetime * fraction


def needs_renewal(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    return now >= renewal_time(not_before, not_after)


def ari_point(start: dt.datetime, end: dt.datetime, fraction: float) -> dt.datetime:
    """A point inside the suggested window [start, end]; `fraction` in [0, 1) picks where (random by the caller)."""
    if end <= start:
        return start
    fraction = min(max(fraction, 0.0), 1.0)
    return start + (end - start) * fraction


def backoff_delay(failures: int, fraction: float = 0.5,
                  retry_after: dt.timedelta | None = None) -> dt.timedelta:
    """How long to wait before trying again after `failures` consecutive failures.

    One failure: no wait (the next run retries), unless the server asked for one with Retry-After. Then
    1 h, 2 h, 4 h ... capped at 24 h, spread by +-25 % (`fraction` 0.5 is the middle). A Retry-After longer
    than the back-off wins.
    """
    if failures <= 1:
        delay = dt.timedelta(0)
    else:
        delay = min(BACKOFF_BASE * (2 ** min(failures - 2, 16)), BACKOFF_MAX)
        delay *= 1 + BACKOFF_JITTER * (2 * min(max(fraction, 0.0), 1.0) - 1)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


@dataclass(frozen=True)
class AriWindow:
    """A suggested renewal window from the CA, and the random point lehttpd picked inside it."""

    start: dt.datetime
    end: dt.datetime
    point: dt.datetime


@dataclass(frozen=True)
class Decision:
    due: bool
    reason: str
    when: dt.datetime | None = None  # when it becomes due (not due), or the moment it became due


def decide(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime, *, force: bool = False,
           ari: AriWindow | None = None, retry_not_before: dt.datetime | None = None,
           failures: int = 0, revoked: bool = False) -> Decision:
    """Is this lineage due now, and why (the reason is shown to the user and in --json)."""
    if force:
        return Decision(True, "forced (--force)")
    if retry_not_before is not None and now < retry_not_before:
        return Decision(False, f"backing off after {failures} failed attempt{'s' if failures != 1 else ''} "
                               f"until {retry_not_before:%Y-%m-%d %H:%M} UTC", retry_not_before)
    if revoked:
        return Decision(True, "the certificate was revoked")
    if now >= not_after:
        return Decision(True, f"expired on {not_after:%Y-%m-%d %H:%M} UTC", not_after)
    if ari is not None:
        if now >= ari.point:
            return Decision(True, f"inside the renewal window suggested by the CA "
                                  f"({ari.start:%Y-%m-%d %H:%M} to {ari.end:%Y-%m-%d %H:%M} UTC)", ari.point)
        return Decision(False, f"the CA suggests renewing from {ari.start:%Y-%m-%d %H:%M} UTC; "
                               f"lehttpd picked {ari.point:%Y-%m-%d %H:%M} UTC", ari.point)
    when = renewal_time(not_before, not_after)
    if now >= when:
        share = "half" if not_after - not_before < SHORT_LIFETIME else "a third"
        return Decision(True, f"less than {share} of its lifetime left (expires {not_after:%Y-%m-%d %H:%M} UTC)",
                        when)
    return Decision(False, f"due from {when:%Y-%m-%d %H:%M} UTC (expires {not_after:%Y-%m-%d})", when)
